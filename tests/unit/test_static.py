"""Static file resolution: URL path → file inside the frontend, content type, cache policy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pgcall.web.static import IMMUTABLE, REVALIDATE, StaticFile, resolve

FILES = [
    "index.html",
    "app.js",
    "lib/client.js",
    "lib/deep/worklet.mjs",
    "style.css",
    "codec.wasm",
    "favicon.svg",
    "data.json",
    "site.webmanifest",
    "font.woff2",
    "docs/index.html",
    "_app/immutable/x.js",
    "_app/immutable/chunks/entry.css",
    "index-3f9a8c1b.js",
    "my-component.js",
    "README",
]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    for name in FILES:
        path = site / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"contents of {name}")
    (tmp_path / "secret.txt").write_text("outside the frontend")
    return site


def served(root: Path, url: str) -> str | None:
    """The file ``url`` resolves to, relative to ``root``, or None for a 404."""
    found = resolve(root, url)
    if found is None:
        return None
    real_root = Path(os.path.realpath(root))
    assert real_root in found.path.parents, f"{url} escaped to {found.path}"
    return found.path.relative_to(real_root).as_posix()


def test_index_for_the_root(root: Path) -> None:
    found = resolve(root, "/")
    assert found == StaticFile(root / "index.html", "text/html; charset=utf-8", REVALIDATE)


def test_empty_path_is_the_root(root: Path) -> None:
    assert served(root, "") == "index.html"


@pytest.mark.parametrize("name", ["lib/client.js", "lib/deep/worklet.mjs", "style.css",
                                  "_app/immutable/chunks/entry.css"])
def test_nested_files(root: Path, name: str) -> None:
    found = resolve(root, "/" + name)
    assert found is not None
    assert found.path == root / name
    assert found.path.read_text() == f"contents of {name}"


def test_query_string_is_ignored(root: Path) -> None:
    assert served(root, "/style.css?v=3") == "style.css"


def test_directory_index(root: Path) -> None:
    assert served(root, "/docs/") == "docs/index.html"
    assert served(root, "/docs") == "docs/index.html"


def test_percent_encoded_names_are_decoded(root: Path) -> None:
    (root / "my file.js").write_text("x")
    assert served(root, "/my%20file.js") == "my file.js"


@pytest.mark.parametrize(("name", "ctype"), [
    ("index.html", "text/html; charset=utf-8"),
    ("app.js", "text/javascript; charset=utf-8"),
    ("lib/deep/worklet.mjs", "text/javascript; charset=utf-8"),
    ("style.css", "text/css; charset=utf-8"),
    ("codec.wasm", "application/wasm"),
    ("favicon.svg", "image/svg+xml"),
    ("data.json", "application/json"),
    ("site.webmanifest", "application/manifest+json"),
    ("font.woff2", "font/woff2"),
])
def test_content_types(root: Path, name: str, ctype: str) -> None:
    found = resolve(root, "/" + name)
    assert found is not None
    assert found.content_type == ctype


def test_unknown_extension_is_octet_stream(root: Path) -> None:
    (root / "blob.bin").write_bytes(b"\x00\x01")
    found = resolve(root, "/blob.bin")
    assert found is not None and found.content_type == "application/octet-stream"


def test_uppercase_extension(root: Path) -> None:
    (root / "LOGO.SVG").write_text("<svg/>")
    found = resolve(root, "/LOGO.SVG")
    assert found is not None and found.content_type == "image/svg+xml"


# -- single-page-app fallback ----------------------------------------------------------------


@pytest.mark.parametrize("url", ["/room/42", "/call", "/settings/", "/lib/nothing-here"])
def test_spa_fallback_for_extensionless_paths(root: Path, url: str) -> None:
    found = resolve(root, url)
    assert found is not None
    assert found.path == root / "index.html"
    assert found.cache_control == REVALIDATE


@pytest.mark.parametrize("url", ["/missing.js", "/lib/missing.css", "/favicon.ico",
                                 "/_app/immutable/gone-3f9a8c1b.js"])
def test_unknown_file_with_extension_is_404(root: Path, url: str) -> None:
    assert resolve(root, url) is None


def test_extensionless_file_is_served_itself(root: Path) -> None:
    assert served(root, "/README") == "README"


def test_no_index_no_fallback(tmp_path: Path) -> None:
    (tmp_path / "app.js").write_text("x")
    assert resolve(tmp_path, "/") is None
    assert resolve(tmp_path, "/room/1") is None
    assert served(tmp_path, "/app.js") == "app.js"


# -- traversal -------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "/../secret.txt",
    "/lib/../../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2e/secret.txt",
    "/%2E%2e/",
    "/lib/%2e%2e/%2e%2e/secret.txt",
    "/..%2fsecret.txt",
    "/lib%2f..%2f..%2fsecret.txt",
    "/%2e%2e%2fsecret.txt",
    "/%2e%2e%5csecret.txt",
    "/lib\\..\\..\\secret.txt",
    "/.",
    "/./index.html",
    "/index.html%00.js",
    "/index.html\x00",
    "/%00",
    "/%ff%fe.js",
])
def test_refused(root: Path, url: str) -> None:
    assert resolve(root, url) is None


@pytest.mark.parametrize("url", ["/%2fetc%2fpasswd", "//etc/passwd", "/%2F%2Fetc/hostname"])
def test_encoded_slashes_stay_inside(root: Path, url: str) -> None:
    # An absolute path smuggled in with encoded or doubled slashes is still relative to the
    # frontend; whatever is served (here the SPA fallback) lies inside it.
    found = served(root, url)
    assert found in (None, "index.html")


def test_encoded_slash_between_inner_names(root: Path) -> None:
    assert served(root, "/lib%2fclient.js") in (None, "lib/client.js")


def test_symlink_to_a_file_outside(root: Path, tmp_path: Path) -> None:
    (root / "leak.txt").symlink_to(tmp_path / "secret.txt")
    assert resolve(root, "/leak.txt") is None


def test_symlink_to_a_directory_outside(root: Path, tmp_path: Path) -> None:
    (root / "out").symlink_to(tmp_path, target_is_directory=True)
    assert resolve(root, "/out/secret.txt") is None
    # Its name without an extension is a client route, never the outside directory's listing.
    assert served(root, "/out") in (None, "index.html")


def test_symlinked_index_outside_is_refused(tmp_path: Path) -> None:
    site = tmp_path / "site2"
    site.mkdir()
    (site / "index.html").symlink_to(tmp_path / "secret.txt")
    assert resolve(site, "/") is None
    assert resolve(site, "/room/1") is None


def test_symlink_inside_the_root_is_followed(root: Path) -> None:
    (root / "alias.js").symlink_to(root / "app.js")
    assert served(root, "/alias.js") == "app.js"


def test_root_given_through_a_symlink(root: Path, tmp_path: Path) -> None:
    # The package reaches its frontends through a symlink (pgcall/frontends -> ../frontends).
    link = tmp_path / "link-to-site"
    link.symlink_to(root, target_is_directory=True)
    assert served(link, "/lib/client.js") == "lib/client.js"
    assert resolve(link, "/../secret.txt") is None


# -- cache policy ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["_app/immutable/x.js", "_app/immutable/chunks/entry.css",
                                  "index-3f9a8c1b.js"])
def test_hashed_assets_are_immutable(root: Path, name: str) -> None:
    found = resolve(root, "/" + name)
    assert found is not None
    assert found.cache_control == IMMUTABLE
    assert "immutable" in IMMUTABLE and "max-age=31536000" in IMMUTABLE


@pytest.mark.parametrize("name", ["index.html", "my-component.js", "app.js", "style.css",
                                  "lib/client.js"])
def test_unhashed_files_revalidate(root: Path, name: str) -> None:
    found = resolve(root, "/" + name)
    assert found is not None
    assert found.cache_control == REVALIDATE == "no-cache"


def test_html_is_never_immutable(root: Path) -> None:
    (root / "_app/immutable/page.html").write_text("<p>")
    found = resolve(root, "/_app/immutable/page.html")
    assert found is not None and found.cache_control == REVALIDATE
