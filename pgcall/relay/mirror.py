"""The hub's copy of the state tables, kept exactly in step with the replication stream.

Owns: the rows clients see in their snapshot (JSON-ready, in pg-relay's encoding), applying
changes to them, and the call table the hub authorizes media with. Because the mirror is
loaded from the stream's own snapshot and then moved by the stream alone, a session's snapshot
taken from it can be followed by live events with nothing lost and nothing twice.
Does not own: routing (``hub``).
"""

from __future__ import annotations

from typing import Any

from ..pg.changes import Change, Columns, Snapshot
from ..pg.values import UNCHANGED
from ..wire import rowjson

# Table → primary key column(s). pg-relay's snapshot keeps the newest 250 chat messages and 200
# transcripts (protocol.md 4.2); the mirror keeps the same. Rooms (sql/0002_rooms.sql) are
# mirrored whole; of room chat the newest messages, over all rooms.
KEYS: dict[str, str | tuple[str, ...]] = {
    "users": "identity", "chat_messages": "id", "call_sessions": "session_id",
    "media_settings": "id", "ai_transcripts": "id",
    "rooms": "room_id", "room_members": ("room_id", "identity"),
    "room_invites": ("room_id", "invitee"), "room_messages": "id",
    "pgcall_presence": "identity", "recordings": "recording_id",
}
CAPS = {"chat_messages": 250, "ai_transcripts": 400,  # transcripts: 200 sent, after filtering
        "room_messages": 5000}
NEWEST_FIRST = ("chat_messages", "ai_transcripts", "room_messages")  # by id, descending
INT_KEYS = ("chat_messages", "ai_transcripts", "room_messages")  # int8 ids arrive as strings

Row = dict[str, Any]


class Mirror:
    def __init__(self) -> None:
        self.tables: dict[str, dict[Any, Row]] = {t: {} for t in KEYS}

    def load(self, snapshot: Snapshot) -> None:
        for table in KEYS:
            rows: dict[Any, Row] = {}
            data = snapshot.tables.get(table)
            if data is not None:
                for raw in data.rows:
                    row = rowjson.encode_row(data.columns, raw)
                    rows[self._key(table, row)] = row
            self.tables[table] = rows

    @staticmethod
    def _key(table: str, row: Row) -> Any:
        names = KEYS[table]
        if isinstance(names, tuple):
            return tuple(row.get(n) for n in names)
        key = row.get(names)
        return int(key) if table in INT_KEYS and key is not None else key

    def apply(self, change: Change) -> tuple[Row | None, Row | None]:
        """Apply one change; returns (new row, old row) JSON-ready, as clients will see them."""
        table = self.tables[change.table]
        old = _encode(change.columns, change.old) if change.old is not None else None
        if change.op == "delete":
            if old is not None:
                table.pop(self._key(change.table, old), None)
            return None, old
        assert change.row is not None
        new = _encode(change.columns, change.row)
        if any(v is UNCHANGED for v in change.row.values()):
            # An unchanged TOASTed value is not sent: keep the one the mirror holds.
            new = table.get(self._key(change.table, new), {}) | new
        if old is not None and self._key(change.table, old) != self._key(change.table, new):
            table.pop(self._key(change.table, old), None)
        table[self._key(change.table, new)] = new
        cap = CAPS.get(change.table)
        if cap is not None:
            while len(table) > cap:
                del table[min(table)]
        return new, old

    def rows(self, table: str) -> list[Row]:
        if table in NEWEST_FIRST:
            return [row for _, row in sorted(self.tables[table].items(), reverse=True)]
        return list(self.tables[table].values())

    def call(self, session_id: str) -> Row | None:
        return self.tables["call_sessions"].get(session_id)

    def settings(self) -> Row | None:
        return self.tables["media_settings"].get(1)

    def room(self, room_id: str) -> Row | None:
        return self.tables["rooms"].get(room_id)

    def member(self, room_id: str, identity: str) -> Row | None:
        return self.tables["room_members"].get((room_id, identity))


def _encode(columns: Columns, raw: dict[str, Any]) -> Row:
    present = tuple(c for c in columns if raw.get(c[0]) is not UNCHANGED)
    return rowjson.encode_row(present, raw)
