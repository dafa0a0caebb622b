"""The SQL of room requests (docs/protocol-rooms.md): create, join, leave, invite, remove,
member state, pins and room chat.

Owns: every statement and check of a room request, each in one transaction under the same
advisory lock as call state changes (so "in at most one call or room" holds when two requests
race), and the room keys of private rooms. Returns None on success, or the error text (or, for
create and join, what the ack carries). Does not own: parsing (``wire.rooms``) or what travels
to whom (``rooms.router``).
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from ..pg.conn import PgConnection
from ..pg.pool import Pool
from ..wire import rooms as w
from .recordings import join_recorded_room
from .store import CALL_LOCK, transaction

# Ends a room nobody is in any more ($1: the room). Its invitations and chat go with it.
_END_IF_EMPTY = ("DELETE FROM rooms WHERE room_id = $1 AND NOT EXISTS "
                 "(SELECT 1 FROM room_members WHERE room_id = $1)")


async def busy(conn: PgConnection, identity: str) -> bool:
    """In a ringing or active call, or in a room."""
    res = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM call_sessions WHERE state IN ('Ringing', 'Active') "
        "AND $1 IN (caller, callee)) OR EXISTS (SELECT 1 FROM room_members "
        "WHERE identity = $1)", [identity])
    return bool(res.rows[0][0])


class RoomStore:
    def __init__(self, pool: Pool, max_room_size: int = 16) -> None:
        self.pool = pool
        self.max_room_size = max_room_size

    async def create(self, me: str, name: str, call_type: str,
                     private: bool) -> tuple[dict[str, Any] | None, str | None]:
        """(ack fields, None) or (None, error)."""
        async with transaction(self.pool) as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", [CALL_LOCK])
            if await busy(conn, me):
                return None, w.ERR_BUSY
            res = await conn.execute(
                "INSERT INTO rooms (name, creator, call_type, max_members, private) "
                "VALUES ($1, $2, $3, $4, $5) RETURNING room_id",
                [name, me, call_type, self.max_room_size, private])
            room_id = res.rows[0][0]
            ack: dict[str, Any] = {"room_id": str(room_id)}
            if private:
                key = secrets.token_urlsafe(16)
                await conn.execute("INSERT INTO pgcall_room_keys (room_id, key) VALUES ($1, $2)",
                                   [room_id, key])
                ack["key"] = key
            await conn.execute("INSERT INTO room_members (room_id, identity) VALUES ($1, $2)",
                               [room_id, me])
        return ack, None

    async def join(self, me: str, room_id: str,
                   key: str | None) -> tuple[dict[str, Any] | None, str | None]:
        rid = uuid.UUID(room_id)
        async with transaction(self.pool) as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", [CALL_LOCK])
            res = await conn.execute(
                "SELECT r.private, r.max_members, k.key, "
                "(SELECT count(*) FROM room_members m WHERE m.room_id = r.room_id), "
                "EXISTS (SELECT 1 FROM room_invites i WHERE i.room_id = r.room_id "
                "AND i.invitee = $2), "
                "EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = r.room_id "
                "AND m.identity = $2) "
                "FROM rooms r LEFT JOIN pgcall_room_keys k USING (room_id) "
                "WHERE r.room_id = $1", [rid, me])
            if not res.rows:
                return None, w.ERR_ROOM_NOT_FOUND
            private, max_members, room_key, count, invited, member = res.rows[0]
            ack: dict[str, Any] = {"room_id": room_id}
            if private:
                if not invited and not (key is not None and room_key is not None
                                        and secrets.compare_digest(key, room_key)):
                    return None, w.ERR_ROOM_KEY
                ack["key"] = room_key
            if member:
                return ack, None  # already in: joining again changes nothing
            if await busy(conn, me):
                return None, w.ERR_BUSY
            if count >= max_members:
                return None, w.ERR_ROOM_FULL
            refused = await join_recorded_room(conn, rid, me)
            if refused is not None:
                return None, refused
            await conn.execute("INSERT INTO room_members (room_id, identity) VALUES ($1, $2)",
                               [rid, me])
            await conn.execute("DELETE FROM room_invites WHERE room_id = $1 AND invitee = $2",
                               [rid, me])
        return ack, None

    async def leave(self, me: str, room_id: str) -> str | None:
        rid = uuid.UUID(room_id)
        async with transaction(self.pool) as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", [CALL_LOCK])
            res = await conn.execute(
                "DELETE FROM room_members WHERE room_id = $1 AND identity = $2", [rid, me])
            if not res.rowcount:
                return w.ERR_NOT_MEMBER
            await conn.execute(_END_IF_EMPTY, [rid])
        return None

    async def invite(self, me: str, room_id: str, target: str) -> str | None:
        rid = uuid.UUID(room_id)
        async with transaction(self.pool) as conn:
            if not await _is_member(conn, rid, me):
                return w.ERR_NOT_MEMBER
            if not (await conn.execute("SELECT 1 FROM users WHERE identity = $1",
                                       [target])).rows:
                return "Target is not online"
            if await _is_member(conn, rid, target):
                return w.ERR_ALREADY_MEMBER
            await conn.execute(
                "INSERT INTO room_invites (room_id, invitee, inviter) VALUES ($1, $2, $3) "
                "ON CONFLICT (room_id, invitee) DO NOTHING", [rid, target, me])
        return None

    async def decline_invite(self, me: str, room_id: str) -> str | None:
        res = await self.pool.execute(
            "DELETE FROM room_invites WHERE room_id = $1 AND invitee = $2",
            [uuid.UUID(room_id), me])
        return None if res.rowcount else w.ERR_INVITE_NOT_FOUND

    async def remove(self, me: str, room_id: str, target: str) -> str | None:
        rid = uuid.UUID(room_id)
        async with transaction(self.pool) as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", [CALL_LOCK])
            res = await conn.execute("SELECT creator FROM rooms WHERE room_id = $1", [rid])
            if not res.rows:
                return w.ERR_ROOM_NOT_FOUND
            if res.rows[0][0] != me:
                return w.ERR_ONLY_CREATOR
            gone = await conn.execute(
                "DELETE FROM room_members WHERE room_id = $1 AND identity = $2", [rid, target])
            if not gone.rowcount:
                return w.ERR_TARGET_NOT_MEMBER
            await conn.execute(_END_IF_EMPTY, [rid])
        return None

    async def set_state(self, me: str, room_id: str, state: dict[str, bool]) -> str | None:
        sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(state, start=3))
        res = await self.pool.execute(
            f"UPDATE room_members SET {sets} WHERE room_id = $1 AND identity = $2",
            [uuid.UUID(room_id), me, *state.values()])
        return None if res.rowcount else w.ERR_NOT_MEMBER

    async def pin(self, me: str, room_id: str, target: str | None) -> str | None:
        rid = uuid.UUID(room_id)
        async with transaction(self.pool) as conn:
            if target is not None and not await _is_member(conn, rid, target):
                return w.ERR_TARGET_NOT_MEMBER
            res = await conn.execute(
                "UPDATE room_members SET pinned = $3 WHERE room_id = $1 AND identity = $2",
                [rid, me, target])
            return None if res.rowcount else w.ERR_NOT_MEMBER

    async def send_message(self, me: str, room_id: str, text: str) -> str | None:
        rid = uuid.UUID(room_id)
        res = await self.pool.execute(
            "INSERT INTO room_messages (room_id, sender, text) SELECT $1, $2, $3 "
            "WHERE EXISTS (SELECT 1 FROM room_members WHERE room_id = $1 AND identity = $2)",
            [rid, me, text])
        return None if res.rowcount else w.ERR_NOT_MEMBER


async def _is_member(conn: PgConnection, room_id: uuid.UUID, identity: str) -> bool:
    res = await conn.execute("SELECT 1 FROM room_members WHERE room_id = $1 AND identity = $2",
                             [room_id, identity])
    return bool(res.rows)


async def leave_all(conn: PgConnection, identities_sql: str, params: list[Any]) -> None:
    """Inside a transaction: the users ``identities_sql`` selects leave their rooms (rooms left
    empty end) and lose the invitations waiting for them. Used on disconnect and when cleaning
    up after a dead pgcall."""
    res = await conn.execute(
        f"DELETE FROM room_members WHERE identity IN ({identities_sql}) RETURNING room_id",
        params)
    for room_id in {row[0] for row in res.rows}:
        await conn.execute(_END_IF_EMPTY, [room_id])
    await conn.execute(f"DELETE FROM room_invites WHERE invitee IN ({identities_sql})", params)
