"""Finding the PostgreSQL server binaries and the OS user that may run them.

Owns: the search order for ``initdb``/``postgres`` and the choice of the unprivileged user.
Does not own: running them (``embedded``).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, postgres) not found: install them "
    "(Debian/Ubuntu: apt-get install postgresql) or pass --dsn postgresql://... "
    "to use an existing server"
)


DEBIAN_ROOT = Path("/usr/lib/postgresql")  # Debian keeps one bin/ per major version here


class BinariesNotFound(Exception):
    pass


def _has_server(bindir: Path) -> bool:
    return (bindir / "initdb").is_file() and (bindir / "postgres").is_file()


def find_bindir(path_env: str | None) -> Path:
    """The directory holding ``initdb`` and ``postgres``.

    Search order: ``PATH``; ``pg_config --bindir``; the newest ``/usr/lib/postgresql/<major>/bin``
    (Debian keeps the server binaries off ``PATH``).
    """
    initdb = shutil.which("initdb", path=path_env)
    if initdb:
        # Debian links initdb into PATH; resolve the link to find postgres beside it.
        bindir = Path(os.path.realpath(initdb)).parent
        if _has_server(bindir):
            return bindir
    pg_config = shutil.which("pg_config", path=path_env)
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out and _has_server(Path(out)):
            return Path(out)
    root = DEBIAN_ROOT
    majors = sorted(
        (int(p.name) for p in root.glob("*") if re.fullmatch(r"\d+", p.name)), reverse=True
    ) if root.is_dir() else []
    for major in majors:
        bindir = root / str(major) / "bin"
        if _has_server(bindir):
            return bindir
    raise BinariesNotFound(INSTALL_HINT)


def server_user(preferred: str) -> str | None:
    """The OS user that runs the server, or None to run it as ourselves.

    PostgreSQL refuses to start as root, so as root we run it as ``preferred`` (``postgres`` by
    default, which Debian's package creates), falling back to ``nobody``.
    """
    if os.geteuid() != 0:
        return None
    for name in (preferred, "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise BinariesNotFound(
        f"running as root, and neither user {preferred!r} nor 'nobody' exists to run PostgreSQL"
    )
