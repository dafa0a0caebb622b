"""Checks of the configuration that run before anything starts, each failing with one line.

Owns: the reasons why a --dsn that does not parse, TLS files that do not load as a certificate
and key pair, a frontend that is not built, or an address that cannot be listened on stop
pgcall, and what the user can do about each.
Does not own: parsing options (``cli``), the embedded server's own failures (``pg.embedded``),
or the checks of a running PostgreSQL (``pg.checks``).
"""

from __future__ import annotations

import errno
import socket
import ssl
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

import pgcall


class StartupError(Exception):
    """One line naming what is wrong and what to do about it."""


class CannotListen(StartupError):
    """The listening socket could not be bound; the message names the address and a remedy."""

    def __init__(self, host: str, port: int, exc: OSError) -> None:
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        reason = (exc.strerror or str(exc)).rstrip(".")
        if isinstance(exc, socket.gaierror):
            hint = "--host must be an address or a name of this machine, e.g. 127.0.0.1"
        elif exc.errno == errno.EADDRINUSE:
            hint = "another program (another pgcall?) listens there: stop it or pass --port"
        elif exc.errno == errno.EADDRNOTAVAIL:
            hint = ("no network interface of this machine has that address: pass --host "
                    "127.0.0.1, one of its addresses, or 0.0.0.0 for all")
        elif exc.errno == errno.EACCES:
            hint = "ports below 1024 need root or CAP_NET_BIND_SERVICE: pass --port 1024 or above"
        else:
            hint = "check --host and --port"
        super().__init__(f"cannot listen on {where}: {reason}; {hint}")


def check_dsn(dsn: str) -> None:
    """A --dsn must parse as a libpq connection string or URI (the server is checked later)."""
    try:
        conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        raise StartupError(
            f"--dsn (or PGCALL_DSN) is not a libpq connection string or URI: "
            f"{str(exc).strip()}; "
            "for example --dsn postgresql://user:password@host/dbname") from None


def _no_password() -> bytes:
    raise StartupError("encrypted")


def _readable(option: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise StartupError(f"{option} {path} does not exist") from None
    except IsADirectoryError:
        raise StartupError(f"{option} {path} is a directory, not a PEM file") from None
    except OSError as exc:
        raise StartupError(f"cannot read {option} {path}: {exc.strerror}") from None


def check_tls(certfile: Path, keyfile: Path) -> None:
    """Both files readable, the first a PEM certificate, the second its unencrypted key."""
    cert_pem = _readable("--certfile", certfile)
    _readable("--keyfile", keyfile)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_verify_locations(cadata=cert_pem.decode("ascii", errors="replace"))
    except (ssl.SSLError, ValueError):
        raise StartupError(f"--certfile {certfile} holds no PEM certificate") from None
    try:
        ctx.load_cert_chain(str(certfile), str(keyfile), password=_no_password)
    except StartupError:
        raise StartupError(f"--keyfile {keyfile} is encrypted: pgcall needs the key without "
                           "a passphrase (openssl pkey -in KEY -out NEWKEY)") from None
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise StartupError(f"--keyfile {keyfile} is not the private key of the certificate "
                               f"in --certfile {certfile}") from None
        raise StartupError(f"--keyfile {keyfile} holds no usable PEM private key "
                           f"({exc.reason or exc})") from None


def source_tree() -> Path | None:
    """The source checkout this pgcall runs from (an editable install), if it is one."""
    top = Path(pgcall.__file__).resolve().parent.parent
    return top if (top / "build.py").is_file() and (top / "frontends").is_dir() else None


def check_frontend(name: str, root: Path) -> None:
    """A named frontend must be there to serve; the Svelte one is built, not checked in."""
    if (root / "index.html").is_file():
        return
    if name == "svelte":
        tree = source_tree()
        if tree is not None:
            raise StartupError(
                "the Svelte frontend is not built yet: run "
                f"`python3 {tree / 'build.py'} --frontends-only` (needs node and npm), "
                "or pass --frontend vanilla")
        raise StartupError(
            "this pgcall was installed without the built Svelte frontend: in pgcall's source "
            "tree run `python3 build.py --frontends-only` and install again, or pass "
            "--frontend vanilla")
    if name == "vanilla":
        raise StartupError(f"the vanilla frontend is missing from {root}: reinstall pgcall")
