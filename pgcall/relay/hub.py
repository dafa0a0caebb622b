"""The hub: routes every committed change from the replication stream to the clients it is for.

Owns: the subscriber registry (one local connection per identity), the state mirror, routing
rules (users/chat/settings/transcripts to everyone; a call's events to its two participants
only; a media frame to its ``to_id`` only), fresh snapshots after a stream restart, and the
media authorization answer sessions ask for (from the mirror: no query per frame).
Never waits on a client: delivery is a non-blocking ``Outbox.put``; a client whose outbox
overflows is told to go.
Does not own: the WebSocket (``session``), SQL (``store``) or the stream (``replication``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

import attrs
import trio

from ..db import mediamsg
from ..pg.changes import Change, LogicalMessage, Snapshot, Transaction
from ..rooms import router as rooms
from ..wire import encode, protocol, rowjson
from .mirror import Mirror, Row
from .outbox import Kind, Outbox
from .shedding import VideoShedder
from .waiters import RowWaiters

log = logging.getLogger("pgcall.hub")

TRANSCRIPT_WINDOW_S = 3600.0
STATE_TABLES = ("users", "chat_messages", "call_sessions", "media_settings", "ai_transcripts")
FRAME_TABLES = {"audio_frames": "audio", "video_frames": "video"}  # frames by kind


class Subscriber(Protocol):
    identity: str
    outbox: Outbox

    def overflowed(self) -> None: ...
    def replace(self) -> None: ...


@attrs.define
class HubStats:
    frames_in: dict[str, int] = attrs.Factory(lambda: {"audio": 0, "video": 0})
    frames_out: dict[str, int] = attrs.Factory(lambda: {"audio": 0, "video": 0})
    frames_unroutable: int = 0
    # By reason: slow_client_{video,audio} (a full outbox), late_{video,audio} (too old to
    # send by their turn), as the outboxes report them.
    frames_dropped: dict[str, int] = attrs.Factory(dict)
    transactions: int = 0
    restarts: int = 0


class Hub:
    def __init__(self, instance_id: int | None = None) -> None:
        self.instance_id = instance_id  # this pgcall's (db.instances), None in tests
        self.mirror = Mirror()
        self.subscribers: dict[str, Subscriber] = {}  # who receives events, by identity
        self.owners: dict[str, Subscriber] = {}  # the connection that owns each identity here
        self._released = trio.Event()
        # Identities whose disconnect clean-up is running: a reconnect waits for it, or the
        # late delete would remove the new connection's user row.
        self.leaving: dict[str, trio.Event] = {}
        self.wall_clock = time.time  # replaceable in tests
        self.ready = trio.Event()  # the first snapshot is loaded
        self.streaming = False
        self.stats = HubStats()
        self._users_shown = RowWaiters[str]()  # by identity
        self._members_shown = RowWaiters[tuple[str, str]]()  # by (room_id, identity)
        # When a local client's frame entered pgcall (trio time), by (kind, session, from, seq):
        # the recipient's sender measures pgcall's own latency from it. Bounded.
        self.inflight: dict[tuple[str, str, str, int], float] = {}
        # Sheds video at the door while the database path lags (graceful overload); fed the
        # pipeline lag of each frame that comes back (docs/performance.md, "Overload").
        self.shedder = VideoShedder()
        self.rooms = rooms.RoomRouter(self.mirror, self._deliver_to,
                                      lambda identity: identity in self.subscribers,
                                      relay_of=self.relay_of)

    INFLIGHT_MAX = 10_000

    def frame_received(self, kind: str, session_id: str, from_id: str, seq: int) -> None:
        if len(self.inflight) >= self.INFLIGHT_MAX:
            self.inflight.clear()  # frames that never came back (e.g. a stream restart)
        self.inflight[(kind, session_id, from_id, seq)] = trio.current_time()

    def frame_dropped(self, reason: str) -> None:
        self.stats.frames_dropped[reason] = self.stats.frames_dropped.get(reason, 0) + 1

    # -- the stream side ---------------------------------------------------------------------

    def restart(self, snapshot: Snapshot) -> None:
        """A (re)started stream: reload the mirror, give every client a fresh snapshot."""
        self.mirror.load(snapshot)
        self.rooms.reload()
        self.streaming = True
        self.stats.restarts += 1
        for sub in list(self.subscribers.values()):
            for message in self.snapshot_messages(sub.identity):
                self._deliver(sub, "state", message)
        for identity in self._users_shown.keys():
            if (row := self.mirror.tables["users"].get(identity)) is not None:
                self._users_shown.wake(identity, row)
        for key in self._members_shown.keys():
            if (row := self.mirror.member(*key)) is not None:
                self._members_shown.wake(key, row)
        self.ready.set()

    def stream_down(self, reason: str) -> None:
        self.streaming = False

    def publish(self, txn: Transaction) -> None:
        self.stats.transactions += 1
        self.rooms.now_us = txn.commit_time
        for change in txn.changes:
            if isinstance(change, LogicalMessage):
                if change.prefix in mediamsg.KIND_OF:
                    try:
                        kind, row = mediamsg.decode(change.prefix, change.content)
                    except mediamsg.MediaMessageError as exc:
                        log.warning("dropped a malformed media message: %s", exc)
                        continue
                    if change.prefix in mediamsg.ROOM_PREFIXES:
                        self._route_room_frame(kind, row)
                    else:
                        self._route_frame(kind, row)
                continue
            frame_kind = FRAME_TABLES.get(change.table)
            if frame_kind is not None:
                if change.op == "insert" and change.row is not None:
                    self._route_frame(frame_kind, change.row)
            elif change.table in STATE_TABLES:
                self._route_state(change)
            elif change.table == "pgcall_presence":
                self._presence(change)
            elif change.table == "recordings":
                self._recording(change)
            elif change.table in rooms.ROOM_TABLES:
                new, old = self.mirror.apply(change)
                self.rooms.state_change(change.table, change.op, new, old)
                if change.table == "room_members" and new is not None:
                    self._members_shown.wake((new["room_id"], new["identity"]), new)
            elif (room_kind := rooms.FRAME_TABLES.get(change.table)) is not None:
                if change.op == "insert" and change.row is not None:
                    self._route_room_frame(room_kind, change.row)

    def _presence(self, change: Change) -> None:
        """Which pgcall serves whom. A newer connection of an identity served here, made on
        another pgcall, replaces the one here (close 4001), as a second connection on this
        one would."""
        new, _ = self.mirror.apply(change)
        if new is None or self.instance_id is None:
            return
        if int(new["instance_id"]) != self.instance_id:
            owner = self.owners.get(new["identity"])
            if owner is not None:
                owner.replace()

    def relay_of(self, identity: str) -> int | None:
        """The pgcall serving ``identity`` (its presence row), None if nobody does."""
        row = self.mirror.tables["pgcall_presence"].get(identity)
        return int(row["instance_id"]) if row is not None else None

    def _recording(self, change: Change) -> None:
        """A recording started, gained a participant or stopped: its participants are told
        (the recording indicator, docs/recording.md), nobody else. A stopped one leaves the
        mirror, which keeps the ones going on."""
        new, old = self.mirror.apply(change)
        row = new if new is not None else old
        assert row is not None
        if change.op == "insert":
            message = encode.insert_event("recordings", row)
        elif change.op == "update":
            message = encode.update_event("recordings", row, old or {})
        else:
            message = encode.delete_event("recordings", old or {})
        for identity in {*(row.get("participants") or ()), *((old or {}).get("participants")
                                                           or ())}:
            sub = self.subscribers.get(identity)
            if sub is not None:
                self._deliver(sub, "state", message)
        if new is not None and new.get("stopped_at") is not None:
            self.mirror.tables["recordings"].pop(new["recording_id"], None)

    def _recordings_of(self, identity: str) -> list[bytes]:
        going_on = [r for r in self.mirror.tables["recordings"].values()
                    if identity in (r.get("participants") or ())]
        return [encode.snapshot("recordings", going_on)] if going_on else []

    def _came_back(self, key: tuple[str, str, str, int]) -> float | None:
        """The time a frame of this relay's senders was received (None for another relay's),
        its pipeline lag observed for the shedder."""
        stamp = self.inflight.pop(key, None)
        if stamp is not None:
            now = trio.current_time()
            self.shedder.observe(now - stamp, now)
        return stamp

    def _route_room_frame(self, kind: str, row: dict[str, Any]) -> None:
        stamp = self._came_back((kind, str(row["room_id"]), row["from_id"], row["seq"]))
        self.rooms.frame(kind, row, stamp)

    def _route_state(self, change: Change) -> None:
        before = None
        if change.table == "call_sessions":
            # The mirror's row names both parties even when the event carries only the key.
            key = (change.old or change.row or {}).get("session_id")
            before = self.mirror.call(str(key)) if key is not None else None
        new, old = self.mirror.apply(change)
        if change.op == "insert":
            assert new is not None
            message = encode.insert_event(change.table, new)
        elif change.op == "update":
            assert new is not None
            message = encode.update_event(change.table, new, old or {})
        else:
            message = encode.delete_event(change.table, old or {})
        if change.table == "call_sessions":
            parties = {r[k] for r in (new, old, before) if r
                       for k in ("caller", "callee") if k in r}
            targets: Iterable[Subscriber] = [self.subscribers[p] for p in parties
                                             if p in self.subscribers]
        else:
            targets = list(self.subscribers.values())
        for sub in targets:
            self._deliver(sub, "state", message)
        if change.table == "users" and new is not None:
            self._users_shown.wake(new["identity"], new)

    def _route_frame(self, kind: str, row: dict[str, Any]) -> None:
        """A frame row (from a frame table or a media message) to its one recipient."""
        self.stats.frames_in[kind] += 1
        sub = self.subscribers.get(row["to_id"])
        if sub is None:
            self.stats.frames_unroutable += 1
            return
        session_id = str(row["session_id"])
        header = encode.media_header(kind, session_id, row["from_id"], row["seq"], row)
        if kind == "audio":
            header["rms"] = rowjson.float4_text(header["rms"])  # REAL, as pg-relay shows it
        stamp = self._came_back((kind, session_id, row["from_id"], row["seq"]))
        payload = row[mediamsg.PAYLOAD_COLUMN[kind]]
        self._deliver(sub, kind, encode.encode_media(kind, header, payload),  # type: ignore[arg-type]
                      stamp)
        self.stats.frames_out[kind] += 1

    def _deliver(self, sub: Subscriber, kind: Kind, message: bytes,
                 stamp: float | None = None) -> None:
        if not sub.outbox.put(kind, message, stamp):
            sub.overflowed()

    def _deliver_to(self, identity: str, kind: str, message: bytes,
                    stamp: float | None) -> bool:
        """Queue for ``identity`` if it is connected here; False if it is not."""
        sub = self.subscribers.get(identity)
        if sub is None:
            return False
        self._deliver(sub, kind, message, stamp)  # type: ignore[arg-type]
        return True

    # -- the session side --------------------------------------------------------------------

    def snapshot_messages(self, identity: str) -> list[bytes]:
        """pg-relay's snapshot (protocol.md 4.2), with call rows limited to the client's own."""
        out = []
        for table in STATE_TABLES:
            rows = self.mirror.rows(table)
            if table == "call_sessions":
                rows = [r for r in rows if identity in (r.get("caller"), r.get("callee"))]
            elif table == "ai_transcripts":
                # pg-relay sends the last hour only (protocol.md 4.2); the ISO strings of
                # rowjson sort like the times they encode.
                cutoff = str(rowjson.encode_value(rowjson.TIMESTAMPTZ_OID, datetime.fromtimestamp(
                    self.wall_clock() - TRANSCRIPT_WINDOW_S, UTC)))
                rows = [r for r in rows if (r.get("created_at") or "") > cutoff][:200]
            out.append(encode.snapshot(table, rows))
        return out + self.rooms.snapshot_messages(identity) + self._recordings_of(identity)

    def claim(self, sub: Subscriber) -> Subscriber | None:
        """Make ``sub`` the owner of its identity; returns the connection it replaces.

        The replaced one stops receiving at once and, when it goes, must not delete the
        user (pg-relay's replacement race, protocol.md 5)."""
        previous = self.owners.get(sub.identity)
        self.owners[sub.identity] = sub
        if previous is not None and self.subscribers.get(sub.identity) is previous:
            del self.subscribers[sub.identity]
        return previous

    def subscribe(self, sub: Subscriber) -> None:
        """Queue ``sub``'s snapshot and start live events, atomically with respect to the
        stream: nothing between the two is lost or sent twice."""
        if self.owners.get(sub.identity) is not sub:
            return  # replaced meanwhile
        self.subscribers[sub.identity] = sub
        for message in self.snapshot_messages(sub.identity):
            self._deliver(sub, "state", message)

    def release(self, sub: Subscriber) -> bool:
        """Forget ``sub``; True if it still owned its identity (then the user goes offline)."""
        if self.subscribers.get(sub.identity) is sub:
            del self.subscribers[sub.identity]
        if self.owners.get(sub.identity) is sub:
            del self.owners[sub.identity]
            self._released.set()
            return True
        return False

    async def wait_no_owners(self) -> None:
        while self.owners:
            self._released = trio.Event()
            await self._released.wait()

    async def wait_user(self, identity: str, accept: Callable[[Row], bool]) -> None:
        """Wait until the stream has shown a users row of ``identity`` that ``accept``s."""
        await self._users_shown.wait(identity, self.mirror.tables["users"].get(identity), accept)

    async def wait_member(self, room_id: str, identity: str) -> None:
        """Wait until the stream has shown ``identity``'s membership of ``room_id`` (so that
        this relay routes its room's media both ways from then on)."""
        await self._members_shown.wait((room_id, identity), self.mirror.member(room_id, identity))

    def media_check(self, sender: str, kind: str, session_id: str, to: str) -> str | None:
        """pg-relay's media checks (protocol.md 3.1, steps 1-4) against the mirror; the error
        message, or None when the frame may go."""
        call = self.mirror.call(session_id)
        if call is None:
            return protocol.ERR_SESSION_NOT_FOUND
        if call.get("state") != "Active":
            return protocol.ERR_NOT_ACTIVE
        if kind == "video" and call.get("call_type") != "Video":
            return protocol.ERR_NOT_VIDEO
        caller, callee = call.get("caller"), call.get("callee")
        if not ((sender == caller and to == callee) or (sender == callee and to == caller)):
            return protocol.ERR_RECIPIENT
        return None

    def statistics(self) -> dict[str, Any]:
        calls = self.mirror.tables["call_sessions"].values()
        return {"clients": len(self.owners), "streaming": self.streaming,
                "active_calls": sum(1 for c in calls if c.get("state") == "Active"),
                **attrs.asdict(self.stats)}
