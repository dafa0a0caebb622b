"""The frozen configuration of one pgcall process.

Owns: the option values and their defaults, and the rules that pick the default data directory.
Does not own: parsing the command line (``cli``) or reading the environment: the caller passes
the environment in, so that nothing below ``cli`` ever looks at ``os.environ``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import attrs

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9000  # pg-relay's port: its clients find us where they found it
DEFAULT_RETAIN_S = 5.0  # frames older than this are deleted (the demo's 5 s)
REAP_INTERVAL_S = 2.0  # how often the reaper runs (the demo's 2 s)
# Set by ``pgcall --workers`` in each worker's environment (workers.py): bind the port with
# SO_REUSEPORT, and report readiness on the file descriptor named.
WORKER_ENV = "PGCALL_WORKER"
READY_FD_ENV = "PGCALL_READY_FD"
DEFAULT_MAX_ROOM_SIZE = 16  # people in one room (speaker-aware forwarding makes 16 fit)
FRONTENDS = ("vanilla", "svelte")
MEDIA_PATHS = ("table", "message")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")


@attrs.frozen
class WsLimits:
    """Every bound one WebSocket connection lives within (docs/limits.md; used by
    ``web.websocket``)."""

    # A video frame is at most 512000 bytes of JPEG plus a small header: 600 KiB leaves room.
    max_message: int = 600 * 1024
    receive_chunk: int = 64 * 1024
    ping_interval_s: float = 10.0
    idle_timeout_s: float = 25.0  # two pings unanswered, and then some
    message_timeout_s: float = 10.0  # 600 KiB in 10 s is 0.5 Mbit/s
    close_timeout_s: float = 2.0
    # Control frames and continuation frames, per second and at once (each data message is
    # limited by the session's rates instead). A browser sends a pong every 10 s and no
    # fragments; each frame costs the server ~15 us whatever its size, so a client flooding
    # pings or one-byte fragments would otherwise cost a whole core.
    frames_per_s: float = 500.0
    frames_burst: float = 1000.0


@attrs.frozen
class Config:
    dsn: str | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    data_dir: Path = Path("pgcall-data")
    frontend: str = "vanilla"
    retain_s: float = DEFAULT_RETAIN_S
    log_level: str = "info"
    log_format: str = "text"
    certfile: Path | None = None
    keyfile: Path | None = None
    allowed_origins: tuple[str, ...] = ()
    join_secret: str | None = None
    pool_size: int = 8
    # How frames travel: "table" (INSERT into audio_frames/video_frames, pg-relay's way, which
    # other processes can also write) or "message" (pg_logical_emit_message: nothing stored).
    media_path: str = "table"
    # The unprivileged OS user that runs the embedded server when pgcall runs as root.
    pg_user: str = "postgres"
    # PATH, used to find the PostgreSQL binaries (read once by the CLI, like everything else).
    path_env: str | None = None
    # --pg-bindir: the embedded server's initdb and postgres, instead of searching for them.
    pg_bindir: Path | None = None
    ws: WsLimits = WsLimits()
    max_room_size: int = DEFAULT_MAX_ROOM_SIZE
    # Days a stopped recording is kept (None: until a participant who started it deletes it).
    recording_retention_days: float | None = None
    # Relay processes on this host and port (``workers``); and, in one of them, what the parent
    # gave it: bind with SO_REUSEPORT, and say "ready" on this file descriptor.
    workers: int = 1
    # Where the replication stream comes from, if not --dsn: a hot standby of it (PG >= 16).
    replication_dsn: str | None = None
    reuse_port: bool = False
    ready_fd: int | None = None

    @property
    def embedded(self) -> bool:
        return self.dsn is None


def default_data_dir(env: Mapping[str, str], home: Path, is_root: bool) -> Path:
    """Where the embedded cluster lives when --data-dir is not given.

    ``$XDG_DATA_HOME/pgcall``, else ``~/.local/share/pgcall``. As root without XDG_DATA_HOME we
    use ``/var/lib/pgcall``: PostgreSQL refuses to run as root, so the server runs as an
    unprivileged user, and that user cannot enter ``/root`` (mode 0700 on Debian). A system
    directory, as every root-run daemon uses, avoids loosening the permissions of ``/root``.
    """
    xdg = env.get("XDG_DATA_HOME")
    if xdg:
        return Path(xdg) / "pgcall"
    if is_root:
        return Path("/var/lib/pgcall")
    return home / ".local" / "share" / "pgcall"
