"""Each relay's own publication: the frames of its own clients, and no others.

Owns: making and dropping ``pgcall_frames_<instance>``, a publication of the frame tables
with a row filter (PostgreSQL >= 15) on the relays a frame names (``to_relay`` of a call's
frame, ``relays`` of a room's; sql/0005_frame_routes.sql), and which publications a relay's
stream reads. With it, PostgreSQL's egress grows with the number of receivers, not with
relays x frames: a relay's walsender decodes every frame but sends only the ones its clients
get, and of each only the columns a relay uses (a column list). A frame naming no relay
(NULL: written by another process) still goes to every relay. On PostgreSQL 14 there are no
row filters or column lists: every relay reads the shared ``pgcall_frames`` and is told so in
the log. Does not own: writing the routes (``framewriter``), liveness
(``instances``: a dead relay's publication goes with its clean-up).
"""

from __future__ import annotations

import logging

from ..pg.conn import PgConnection
from .framewriter import COLUMNS

log = logging.getLogger("pgcall.publications")

STATE = "pgcall_state"
SHARED_FRAMES = "pgcall_frames"
ROW_FILTERS_FROM = 150000  # PostgreSQL 15


def name_of(instance_id: int) -> str:
    return f"pgcall_frames_{instance_id}"


def published(table: str) -> str:
    """A frame table with its column list: the columns a relay routes and sends on. Not
    ``id``, ``inserted_at`` or the route itself: every published column is decoded by every
    relay for every frame (a row filter may still test a column left out, the publication
    being insert-only)."""
    return f"{table} ({', '.join(COLUMNS[table][:-1])})"


def create_sql(instance_id: int) -> str:
    mine = f"'{{{instance_id}}}'::bigint[]"
    return (f"CREATE PUBLICATION {name_of(instance_id)} FOR TABLE "
            f"{published('audio_frames')} WHERE (to_relay IS NULL OR to_relay = {instance_id}), "
            f"{published('video_frames')} WHERE (to_relay IS NULL OR to_relay = {instance_id}), "
            f"{published('room_audio_frames')} WHERE (relays IS NULL OR relays @> {mine}), "
            f"{published('room_video_frames')} WHERE (relays IS NULL OR relays @> {mine}) "
            "WITH (publish = 'insert')")


async def open_relay_publication(conn: PgConnection, instance_id: int) -> tuple[str, ...]:
    """Make this relay's publication; the publications its stream is to read."""
    if conn.server_version < ROW_FILTERS_FROM:
        log.warning("PostgreSQL %d has no publication row filters: this relay receives every "
                    "frame, its clients' or not (PostgreSQL 15 or newer sends each relay only "
                    "its own)", conn.server_version // 10000)
        return STATE, SHARED_FRAMES
    await conn.execute(f"DROP PUBLICATION IF EXISTS {name_of(instance_id)}")
    await conn.execute(create_sql(instance_id))
    return STATE, name_of(instance_id)


async def drop_relay_publication(conn: PgConnection, instance_id: int) -> None:
    await conn.execute(f"DROP PUBLICATION IF EXISTS {name_of(instance_id)}")
