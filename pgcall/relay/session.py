"""One client's WebSocket session, speaking pg-relay's protocol (protocol.md 2-6).

Owns: the connection sequence (identity first, then the snapshot, then live events), handling
the client's messages strictly one after another (so media stays in order and a message sent
right after connecting is processed, not dropped), replies, rate limits, the sender task that
writes to the socket (besides the outbox's direct path while it is idle: ``sending_now``),
shedding video at the door while the database path lags (``hub.shedder``), and the clean-up on
disconnect.
Does not own: SQL (``store``), routing (``hub``), parsing (``protocol``).

Close codes sent from here: 4001 replaced by a newer connection of the same identity; 4008
too far behind (outbox overflow); 4029 rate limit exhausted; 1001 server shutting down; 1011
database unavailable at connect. The WebSocket layer sends the others (docs/limits.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import attrs
import trio

from ..db.recordings import RecordingStore
from ..db.rooms import RoomStore
from ..db.store import Store
from ..pg.conn import ConnectionLost, PgError
from ..recording.requests import carry_out as recording_request
from ..rooms.requests import carry_out
from ..web.websocket import LINGER_S, ServerWebSocket, WebSocketClosed
from ..wire import encode, protocol, rowjson
from ..wire.recording import RECORDING_CONTROL_TYPES
from ..wire.rooms import ROOM_CONTROL_TYPES, RoomMedia
from .hub import Hub
from .outbox import CloseRequested, Outbox, OutboxLimits
from .ratelimit import CLOSE_RATE_LIMITED, ERR_RATE_LIMITED, ConnectionLimits

log = logging.getLogger("pgcall.session")

CLOSE_REPLACED = 4001
CLOSE_GOING_AWAY = 1001
SEND_BATCH_BYTES = 256 * 1024  # at most this much queued media joins one socket write
USER_ROW_WAIT_S = 5.0  # how long a new connection waits for its own users row in the stream
ERR_DATABASE = "Database unavailable, please retry"
ERR_INTERNAL = "Internal server error"
CONTROL_BUCKETS = {"send_message": "chat", "set_nickname": "nickname", "request_call": "call",
                   "send_room_message": "chat", "create_room": "call", "join_room": "call",
                   "invite_to_room": "call", "start_recording": "call",
                   "get_recording": "replay"}
LOGGED_REQUESTS = frozenset({"request_call", "accept_call", "decline_call", "end_call",
                             "create_room", "join_room", "leave_room", "remove_from_room",
                             "start_recording", "stop_recording", "delete_recording"})


class FrameSink(Protocol):
    """Where a session hands its checked frames (``db.framewriter.FrameWriter``)."""

    def submit(self, media: protocol.Media | RoomMedia, from_id: str,
               on_failed: Callable[[PgError], None],
               route: int | list[int] | None = None) -> None: ...


@attrs.frozen
class SessionContext:
    hub: Hub
    store: Store
    frames: FrameSink
    rooms: RoomStore | None = None
    recordings: RecordingStore | None = None
    outbox_limits: OutboxLimits = attrs.field(factory=OutboxLimits)
    video_enabled: bool = True
    # Observes pgcall's own latency of each relayed frame (receive → send), in seconds.
    on_latency: Callable[[float], None] | None = None


class Session:
    def __init__(self, ctx: SessionContext, identity: str) -> None:
        self.ctx = ctx
        self.identity = identity
        self.outbox = Outbox(ctx.outbox_limits, on_drop=ctx.hub.frame_dropped)
        settings = ctx.hub.mirror.settings() or {}
        # Media limits follow the configured rates (twice them), not fixed numbers.
        self.limits = ConnectionLimits(
            trio.current_time(), video_fps=float(settings.get("video_fps") or 15),
            audio_fps=1000.0 / float(settings.get("audio_frame_ms") or 50))
        self._told_overflow = False
        self._logged_errors: set[str] = set()
        # Per media kind, what a failed write of its frames answers (made once, not per frame).
        self._write_failed = {kind: self._failed_write(req_type)
                              for kind, req_type in protocol.MEDIA_REQ_TYPES.items()}
        # (the settings row they were read from, audio, video); the sentinel: not read yet
        self._frame_limits: tuple[object, int, int] = (self, 0, 0)

    def _failed_write(self, req_type: str) -> Callable[[PgError], None]:
        return lambda exc: self.reply(encode.error(req_type, self._db_error(req_type, exc)))

    def _size_limits(self) -> tuple[int, int]:
        """The media settings' frame size limits (audio, video), read again only when the
        settings row changes."""
        settings = self.ctx.hub.mirror.settings()
        row, audio, video = self._frame_limits
        if settings is not row:
            found = settings or {}
            audio = int(found.get("audio_max_frame_bytes") or 64000)
            video = int(found.get("video_max_frame_bytes") or 512000)
            self._frame_limits = (settings, audio, video)
        return audio, video

    # Subscriber interface (hub side)
    def overflowed(self) -> None:
        if not self._told_overflow and self.outbox.overflowed:
            self._told_overflow = True
            log.info("client %s too far behind; closing", self.identity[:8])

    def replace(self) -> None:
        self.outbox.request_close(CLOSE_REPLACED, "Replaced by new connection")

    def reply(self, message: bytes) -> None:
        self.outbox.put("state", message)

    # -- messages --------------------------------------------------------------------------------

    async def handle(self, data: bytes) -> None:
        now = trio.current_time()
        if not self.limits.allow("message", now):
            return self._refused("unknown")
        max_audio, max_video = self._size_limits()
        try:
            msg = protocol.parse_message(data, video_enabled=self.ctx.video_enabled,
                                         max_audio_bytes=max_audio, max_video_bytes=max_video)
        except protocol.ProtocolError as exc:
            self.reply(encode.error(exc.req_type, exc.message))
            return None
        if isinstance(msg, protocol.Media | RoomMedia):
            return await self._media(msg, now)
        return await self._control(msg, now)

    def _refused(self, req_type: str) -> None:
        self.reply(encode.error(req_type, ERR_RATE_LIMITED))
        if self.limits.exhausted:
            log.warning("client %s exceeded its rate limits; closing", self.identity[:8])
            # Flushed: every refused message still gets its error (docs/limits.md) first.
            self.outbox.request_close(CLOSE_RATE_LIMITED, ERR_RATE_LIMITED, flush=True)

    async def _control(self, msg: protocol.Control, now: float) -> None:
        bucket = CONTROL_BUCKETS.get(msg.type, "control")
        if not self.limits.allow(bucket, now):
            return self._refused(msg.type)
        store, me, f = self.ctx.store, self.identity, msg.fields
        extra: dict[str, object] = {}
        try:
            if msg.type in ROOM_CONTROL_TYPES:
                assert self.ctx.rooms is not None, "rooms need a RoomStore"
                extra, err = await carry_out(self.ctx.rooms, me, msg)
                if err is None and msg.type in ("create_room", "join_room"):
                    # Acked once this relay has seen the membership: media the client sends
                    # right after the ack is then routed, not refused as from a non-member.
                    room_id = str(extra.get("room_id") or f["room_id"])
                    with trio.move_on_after(USER_ROW_WAIT_S):
                        await self.ctx.hub.wait_member(room_id, me)
            elif msg.type in RECORDING_CONTROL_TYPES:
                assert self.ctx.recordings is not None, "recording needs a RecordingStore"
                extra, err = await recording_request(self.ctx.recordings, me, msg, self.reply)
            elif msg.type == "set_nickname":
                err = await store.set_nickname(me, f["nickname"])
            elif msg.type == "send_message":
                err = await store.send_message(me, f["text"])
            elif msg.type == "request_call":
                err = await store.request_call(me, f["target"], f["call_type"])
            elif msg.type == "accept_call":
                err = await store.accept_call(me, f["session_id"])
            elif msg.type == "decline_call":
                err = await store.decline_call(me, f["session_id"])
            else:
                err = await store.end_call(me, f["session_id"])
        except PgError as exc:
            err = self._db_error(msg.type, exc)
        if err is None:
            self.reply(encode.ack(msg.type, **extra))
            if msg.type in LOGGED_REQUESTS:
                log.info("%s by %s", msg.type, me[:8])
        else:
            self.reply(encode.error(msg.type, err))
        return None

    def _db_error(self, req_type: str, exc: PgError) -> str:
        """The reply to a failed statement. A lost connection is an outage the client may wait
        out; anything else is pgcall's own fault and is logged (once per connection and kind:
        a media stream would repeat it 35 times a second). Neither leaks the server's text."""
        if isinstance(exc, ConnectionLost):
            log.debug("%s from %s: database unavailable: %s", req_type, self.identity[:8], exc)
            return ERR_DATABASE
        if req_type not in self._logged_errors:
            self._logged_errors.add(req_type)
            log.warning("%s from %s failed: %s", req_type, self.identity[:8], exc)
        return ERR_INTERNAL

    async def _media(self, media: protocol.Media | RoomMedia, now: float) -> None:
        req_type = protocol.MEDIA_REQ_TYPES[media.kind]
        bucket = "thumb" if media.header.get("layer") == "thumb" else media.kind
        if not self.limits.allow(bucket, now):
            return self._refused(req_type)
        hub = self.ctx.hub
        if isinstance(media, RoomMedia):
            stream_id = media.room_id
            err = hub.rooms.media_check(self.identity, media.kind, media.room_id)
        else:
            stream_id = media.session_id
            err = hub.media_check(self.identity, media.kind, media.session_id, media.to)
        if err is not None:
            self.reply(encode.error(req_type, err))
            return None
        if media.kind == "video" and hub.shedder.drop(self.identity):
            hub.frame_dropped("overload_video")  # the database path lags: shed, not queued
            return None
        hub.frame_received(media.kind, stream_id, self.identity, media.seq)
        route = (hub.rooms.relays_for(media.room_id, self.identity, media.kind)
                 if isinstance(media, RoomMedia) else hub.relay_of(media.to))
        # Handed over, not awaited: the next message is read while the frame is written.
        self.ctx.frames.submit(media, self.identity, self._write_failed[media.kind], route)
        return None

    # -- the socket ------------------------------------------------------------------------------

    def sending_now(self, ws: ServerWebSocket) -> Callable[[bytes, float | None], bool]:
        """The outbox's direct path: a message put while the sender is idle goes out at once
        from the putting task (the hub's), if the socket takes it (``ServerWebSocket.send_now``);
        its latency is observed as the sender would."""
        observe = self.ctx.on_latency

        def send_now(data: bytes, stamp: float | None) -> bool:
            if not ws.send_now(data):
                return False
            if observe is not None and stamp is not None:
                observe(trio.current_time() - stamp)
            return True

        return send_now

    async def run_sender(self, ws: ServerWebSocket, done: trio.CancelScope) -> None:
        """The writer of this socket (the outbox's direct path writes only while this waits
        idle): drains the outbox, pings the client, sends the control frames the reader owes and
        the rest of a direct write; closes when asked, then ends the session."""
        outbox, observe = self.outbox, self.ctx.on_latency
        try:
            while True:
                data = await outbox.get()
                if data is None:  # woken: a ping is due, or the reader owes a control frame
                    if ws.ping_due:
                        await ws.send_ping()
                    else:
                        await ws.send_raw(ws.take_control())
                    continue
                # What else waits goes in the same write (fewer system calls under load).
                batch, stamps, size = [data], [outbox.last_stamp], len(data)
                while size < SEND_BATCH_BYTES and (more := outbox.get_nowait()) is not None:
                    batch.append(more)
                    stamps.append(outbox.last_stamp)
                    size += len(more)
                await ws.send(*batch)
                if observe is not None:
                    now = trio.current_time()
                    for stamp in stamps:
                        if stamp is not None:
                            observe(now - stamp)
        except CloseRequested as req:
            log.info("closing %s: %d %s", self.identity[:8], req.code, req.reason)
            await ws.close(req.code, req.reason)
        except WebSocketClosed:
            pass  # the reader sees it too
        done.cancel()


async def run_session(ctx: SessionContext, ws: ServerWebSocket, token: str | None) -> None:
    """One client, from its upgrade to its disconnect (protocol.md 4.1)."""
    try:
        identity, token = await ctx.store.resolve_identity(token)
    except PgError as exc:
        log.warning("cannot resolve identity: %s", exc)
        await ws.close(1011, "Database unavailable")
        return
    session = Session(ctx, identity)
    ws.on_control = session.outbox.wake
    session.outbox.direct = session.sending_now(ws)
    session.reply(encode.identity(identity, token))  # always the first message
    previous = ctx.hub.claim(session)
    if previous is not None:
        previous.replace()
    log.info("client %s connected", identity[:8])
    ended = "cancelled"
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(session.run_sender, ws, nursery.cancel_scope)
            nursery.start_soon(ws.run_timers, session.outbox.wake, session.outbox.request_close)
            try:
                await _register(ctx, identity)
                ctx.hub.subscribe(session)
                while True:
                    data = await ws.receive()
                    if session.outbox.close_request is None:  # else closing: drain
                        await session.handle(data)
            except WebSocketClosed as exc:
                ended = exc.reason if exc.code is None else f"{exc.reason} ({exc.code})"
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            owner = ctx.hub.release(session)
            log.info("client %s disconnected: %s", identity[:8], ws.closed_by or ended)
            # The reader and the sender are gone: finish the closing handshake, close TCP.
            with trio.move_on_after(ws.limits.close_timeout_s + LINGER_S):
                await ws.close(CLOSE_GOING_AWAY if ws.open else 1000)
            if owner:
                done = ctx.hub.leaving[identity] = trio.Event()
                try:
                    await ctx.store.disconnect_user(identity)
                except PgError as exc:
                    log.warning("cannot remove %s: %s", identity[:8], exc)
                finally:
                    del ctx.hub.leaving[identity]
                    done.set()


async def _register(ctx: SessionContext, identity: str) -> None:
    """pg-relay's users upsert, once any clean-up of a previous connection is done, and the
    wait for its row in the stream, so the snapshot holds the client's own row."""
    try:
        while (leaving := ctx.hub.leaving.get(identity)) is not None:
            await leaving.wait()
        connected_at = await ctx.store.connect_user(identity)
        mark = rowjson.encode_value(rowjson.TIMESTAMPTZ_OID, connected_at)
        with trio.move_on_after(USER_ROW_WAIT_S):
            await ctx.hub.wait_user(identity, lambda r: r["connected_at"] >= mark)
    except PgError as exc:
        log.warning("cannot register %s: %s", identity[:8], exc)
