"""The SQL a session runs: identities, presence, chat and call state changes (frames are
written by ``framewriter``).

Owns: every statement with pg-relay's checks, in pg-relay's order, with its error strings
(protocol.md 3 and 3.1). Call state changes take one transaction-scoped advisory lock, so two
simultaneous ``request_call``s cannot put one user in two calls (pg-relay's checks raced).
Does not own: parsing/validation (``protocol``), media authorization (``hub``).
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from ..pg.conn import PgConnection
from ..pg.conn import transaction as pg_transaction
from ..pg.pool import Pool
from ..wire import protocol as p

CALL_LOCK = 0x706763616C6C01  # pg_advisory_xact_lock key for call state changes


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_identity() -> str:
    # pg-relay's shape: two UUIDv4s without hyphens, 64 lower-case hex characters.
    return uuid.uuid4().hex + uuid.uuid4().hex


@contextlib.asynccontextmanager
async def transaction(pool: Pool) -> AsyncIterator[PgConnection]:
    async with pool.connection() as conn, pg_transaction(conn):
        yield conn


class Store:
    def __init__(self, pool: Pool, instance_id: int) -> None:
        self.pool = pool
        self.instance_id = instance_id

    # -- identity and presence -----------------------------------------------------------------

    async def resolve_identity(self, token: str | None) -> tuple[str, str]:
        """(identity, token): the token's identity, or a new pair for a missing/unknown one."""
        if token:
            res = await self.pool.execute(
                "UPDATE pgcall_tokens SET last_seen = now() WHERE token_hash = $1 "
                "RETURNING identity", [token_hash(token)])
            if res.rows:
                return res.rows[0][0], token
        identity, token = new_identity(), str(uuid.uuid4())
        await self.pool.execute(
            "INSERT INTO pgcall_tokens (token_hash, identity) VALUES ($1, $2)",
            [token_hash(token), identity])
        return identity, token

    async def identity_of(self, token: str) -> str | None:
        """The identity a token was given, or None; never a new one (HTTP downloads)."""
        res = await self.pool.execute(
            "SELECT identity FROM pgcall_tokens WHERE token_hash = $1", [token_hash(token)])
        return res.rows[0][0] if res.rows else None

    async def connect_user(self, identity: str) -> Any:
        """pg-relay's upsert (protocol.md 5), and this pgcall's claim on the user."""
        async with transaction(self.pool) as conn:
            res = await conn.execute(
                "INSERT INTO users (identity, nickname) VALUES ($1, $2) "
                "ON CONFLICT (identity) DO UPDATE SET connected_at = now(), "
                "nickname = CASE WHEN users.nickname = '' THEN excluded.nickname "
                "ELSE users.nickname END RETURNING connected_at",
                [identity, f"user-{identity[:8]}"])
            await conn.execute(
                "INSERT INTO pgcall_presence (identity, instance_id) VALUES ($1, $2) "
                "ON CONFLICT (identity) DO UPDATE SET instance_id = excluded.instance_id",
                [identity, self.instance_id])
            return res.rows[0][0]

    async def disconnect_user(self, identity: str) -> None:
        """Delete the user's calls, then the user (protocol.md 6), in one transaction; the
        user also leaves its room (a room left empty ends). Only while this pgcall still
        serves the user: a newer connection of the same identity on another pgcall has taken
        the user over, and keeps it."""
        from .rooms import leave_all

        async with transaction(self.pool) as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", [CALL_LOCK])
            mine = await conn.execute(
                "DELETE FROM pgcall_presence WHERE identity = $1 AND instance_id = $2 "
                "RETURNING 1", [identity, self.instance_id])
            if not mine.rows:
                return
            await conn.execute("DELETE FROM call_sessions WHERE caller = $1 OR callee = $1",
                               [identity])
            await leave_all(conn, "$1", [identity])
            await conn.execute("DELETE FROM users WHERE identity = $1", [identity])

    # -- control messages: each returns None on success or pg-relay's error string -------------

    async def set_nickname(self, identity: str, nickname: str) -> str | None:
        res = await self.pool.execute("UPDATE users SET nickname = $2 WHERE identity = $1",
                                      [identity, nickname])
        return None if res.rowcount else p.ERR_USER_NOT_FOUND

    async def send_message(self, identity: str, text: str) -> str | None:
        await self.pool.execute("INSERT INTO chat_messages (sender, text) VALUES ($1, $2)",
                                [identity, text])
        return None

    async def request_call(self, identity: str, target: str, call_type: str) -> str | None:
        if target == identity:
            return p.ERR_CALL_SELF
        async with transaction(self.pool) as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", [CALL_LOCK])
            if not (await conn.execute("SELECT 1 FROM users WHERE identity = $1",
                                       [target])).rows:
                return p.ERR_TARGET_OFFLINE
            busy = await conn.execute(
                "SELECT 1 FROM call_sessions WHERE state IN ('Ringing', 'Active') AND "
                "(caller IN ($1, $2) OR callee IN ($1, $2)) UNION ALL "
                "SELECT 1 FROM room_members WHERE identity IN ($1, $2) LIMIT 1",
                [identity, target])
            if busy.rows:  # pg-relay's text; a room counts as a call here
                return p.ERR_BUSY
            await conn.execute(
                "INSERT INTO call_sessions (call_type, state, caller, callee) "
                "VALUES ($1, 'Ringing', $2, $3)", [call_type, identity, target])
        return None

    async def _call(self, conn: PgConnection, session_id: str) -> tuple[Any, ...] | None:
        await conn.execute("SELECT pg_advisory_xact_lock($1)", [CALL_LOCK])
        res = await conn.execute(
            "SELECT caller, callee, state FROM call_sessions WHERE session_id = $1",
            [uuid.UUID(session_id)])
        return res.rows[0] if res.rows else None

    async def accept_call(self, identity: str, session_id: str) -> str | None:
        async with transaction(self.pool) as conn:
            call = await self._call(conn, session_id)
            if call is None:
                return p.ERR_SESSION_NOT_FOUND
            if call[1] != identity:
                return p.ERR_ONLY_CALLEE_ACCEPT
            if call[2] != "Ringing":
                return p.ERR_NOT_RINGING
            await conn.execute("UPDATE call_sessions SET state = 'Active', answered_at = now() "
                               "WHERE session_id = $1", [uuid.UUID(session_id)])
        return None

    async def decline_call(self, identity: str, session_id: str) -> str | None:
        return await self._delete_call(identity, session_id, callee_only=True)

    async def end_call(self, identity: str, session_id: str) -> str | None:
        return await self._delete_call(identity, session_id, callee_only=False)

    async def _delete_call(self, identity: str, session_id: str, *,
                           callee_only: bool) -> str | None:
        async with transaction(self.pool) as conn:
            call = await self._call(conn, session_id)
            if call is None:
                return p.ERR_SESSION_NOT_FOUND
            if callee_only and call[1] != identity:
                return p.ERR_ONLY_CALLEE_DECLINE
            if not callee_only and identity not in (call[0], call[1]):
                return p.ERR_ONLY_PARTICIPANT
            await conn.execute("DELETE FROM call_sessions WHERE session_id = $1",
                               [uuid.UUID(session_id)])
        return None
