"""Checks before start-up: each bad input gives one line naming it (``pgcall.preflight``)."""

from __future__ import annotations

import errno
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import trio

from pgcall import preflight
from pgcall.preflight import CannotListen, StartupError, check_dsn, check_frontend, check_tls
from tests.integration.test_security import self_signed


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate and its key."""
    return trio.run(self_signed, tmp_path)


def reason(check: object, *args: object) -> str:
    with pytest.raises(StartupError) as info:
        check(*args)  # type: ignore[operator]
    message = str(info.value)
    assert "\n" not in message
    return message


# -- TLS files -------------------------------------------------------------------------------------


def test_a_good_pair_passes(pair: tuple[Path, Path]) -> None:
    check_tls(*pair)


def test_missing_certificate(pair: tuple[Path, Path], tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    assert reason(check_tls, missing, pair[1]) == f"--certfile {missing} does not exist"


def test_missing_key(pair: tuple[Path, Path], tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    assert reason(check_tls, pair[0], missing) == f"--keyfile {missing} does not exist"


def test_certificate_is_a_directory(pair: tuple[Path, Path], tmp_path: Path) -> None:
    assert reason(check_tls, tmp_path, pair[1]) == (
        f"--certfile {tmp_path} is a directory, not a PEM file")


def test_certificate_that_is_not_one(pair: tuple[Path, Path], tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("hello\n")
    assert reason(check_tls, junk, pair[1]) == f"--certfile {junk} holds no PEM certificate"


def test_key_that_is_not_one(pair: tuple[Path, Path], tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("hello\n")
    message = reason(check_tls, pair[0], junk)
    assert message.startswith(f"--keyfile {junk} holds no usable PEM private key")


def test_certificate_given_as_key(pair: tuple[Path, Path]) -> None:
    assert reason(check_tls, pair[0], pair[0]).startswith(f"--keyfile {pair[0]} holds no usable")


def test_key_of_another_certificate(pair: tuple[Path, Path], tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    _, other_key = trio.run(self_signed, other)
    assert reason(check_tls, pair[0], other_key) == (
        f"--keyfile {other_key} is not the private key of the certificate in "
        f"--certfile {pair[0]}")


def test_encrypted_key_is_refused_without_a_prompt(pair: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    locked = tmp_path / "locked.pem"
    if shutil.which("openssl"):
        subprocess.run(["openssl", "pkey", "-in", str(pair[1]), "-aes256", "-passout",
                        "pass:secret", "-out", str(locked)], check=True, capture_output=True)
    else:
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_pem_private_key(pair[1].read_bytes(), None)
        locked.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret")))
    assert reason(check_tls, pair[0], locked).startswith(f"--keyfile {locked} is encrypted")


# -- --dsn -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dsn", ["host=/run/pg dbname=x", "postgresql://u:p@db.example/calls",
                                 "postgresql:///calls"])
def test_dsns_that_parse(dsn: str) -> None:
    check_dsn(dsn)


@pytest.mark.parametrize("dsn", ["not a dsn", "host=x nosuchoption=1",
                                 "postgresql://h/x?bogus=1"])
def test_dsns_that_do_not(dsn: str) -> None:
    assert reason(check_dsn, dsn).startswith(
        "--dsn (or PGCALL_DSN) is not a libpq connection string or URI: ")


# -- frontends -------------------------------------------------------------------------------------


def test_a_built_frontend_passes(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html>")
    check_frontend("svelte", tmp_path)
    check_frontend("vanilla", tmp_path)


def test_a_directory_of_ones_own_passes_as_it_is(tmp_path: Path) -> None:
    check_frontend(str(tmp_path), tmp_path)


def test_unbuilt_svelte_in_a_source_tree(tmp_path: Path) -> None:
    tree = preflight.source_tree()
    assert tree is not None  # the tests run from the source tree
    message = reason(check_frontend, "svelte", tmp_path)
    assert f"`python3 {tree / 'build.py'} --frontends-only`" in message


def test_unbuilt_svelte_in_an_installed_package(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight, "source_tree", lambda: None)
    message = reason(check_frontend, "svelte", tmp_path)
    assert "installed without the built Svelte frontend" in message
    assert "python3 build.py --frontends-only" in message


# -- listening ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("exc", "hint"), [
    (OSError(errno.EADDRINUSE, "Address already in use"), "pass --port"),
    (OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address"), "pass --host"),
    (OSError(errno.EACCES, "Permission denied"), "--port 1024 or above"),
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "--host must be"),
])
def test_cannot_listen_names_the_address_and_a_remedy(exc: OSError, hint: str) -> None:
    message = str(CannotListen("example.test", 80, exc))
    assert message.startswith(f"cannot listen on example.test:80: {exc.strerror}; ")
    assert hint in message


def test_cannot_listen_on_ipv6_brackets_the_address() -> None:
    exc = OSError(errno.EADDRINUSE, "Address already in use")
    assert str(CannotListen("::1", 9000, exc)).startswith("cannot listen on [::1]:9000: ")
