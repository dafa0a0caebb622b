"""A server WebSocket on a trio stream, driven by wsproto: pgcall's own, so that every byte a
client sends is bounded and timed, and one task alone writes to the socket.

Owns: reading messages (each frame header checked by ``FrameGuard`` before its payload is read;
a deadline on silence and on an unfinished message), queueing the pongs the peer asks for,
pinging, the closing handshake with its deadline, and closing TCP after it.
Does not own: the upgrade (``upgrade``), the listener (``frontdoor``) or what messages mean
(``relay.session``).

Threading of the socket: ``receive`` runs in the reading task; every ``send_*`` call, ``close``
included, must come from one writing task (the session's sender). A pong the reader owes is
queued here and handed to the writer through ``on_control`` (it wakes the writer, which sends
``take_control()`` before its next message). hypercorn crashed when its ping task and its
close raced on one stream; here there is nothing to race. The one exception, ``send_now``, is
a single non-blocking write while the writer is idle, so it never overlaps a write of the
writer's; what it leaves unwritten is the writer's to finish, before anything else.

Timeouts (docs/limits.md): a peer that sends nothing at all for ``idle_timeout_s`` (our pings
every ``ping_interval_s`` make any live client answer), a message not complete
``message_timeout_s`` after its first byte, and a closing handshake the peer does not finish
within ``close_timeout_s`` all end the connection. One task (``run_timers``) keeps the first
two and the ping cadence, so reading and writing a message never set a timer. After the
closing handshake the server closes TCP (RFC 6455 §7.1.1): a FIN at once, the socket after at
most ``LINGER_S``, so a peer cannot keep it open.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import trio
from wsproto.connection import Connection, ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, Pong, TextMessage
from wsproto.utilities import LocalProtocolError

from ..config import WsLimits
from . import masking, sockio
from .frameguard import FrameGuard, Oversize

log = logging.getLogger("pgcall.websocket")
masking.install()

CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_TOO_BIG = 1009
CLOSE_POLICY = 1008
LINGER_S = 1.0  # after the closing handshake, how long the peer has to close TCP


_DISCARDED = object()  # what an oversized message left has been dropped (or enough of it)


class FrameFlood:
    """More control frames and continuations than the frame budget allows
    (``WsLimits.frames_per_s``)."""


class WebSocketClosed(Exception):
    """The connection is over. ``reason`` says why in a few words (for the log and metrics):
    ``closed`` (the peer's close frame), ``eof``, ``protocol`` (wsproto refused a frame),
    ``too_big``, ``idle``, ``slow_message``, ``broken`` (the transport failed),
    ``close_timeout`` (the peer did not answer our close frame in time), ``frame_flood``."""

    def __init__(self, reason: str, code: int | None = None, detail: str = "") -> None:
        super().__init__(reason, code, detail)
        self.reason, self.code, self.detail = reason, code, detail


class ServerWebSocket:
    def __init__(self, stream: trio.abc.Stream, conn: Connection,
                 limits: WsLimits | None = None) -> None:
        self.stream = stream
        self._io = sockio.for_stream(stream)  # reads and writes of a message (not the close)
        self._ws = conn
        self.limits = limits or WsLimits()
        self._guard = FrameGuard(self.limits.max_message)
        # A message that came in several events (fragments, or TCP reads), joined as it comes:
        # its size is bounded by the guard, whatever the number of frames.
        self._parts = bytearray()
        self._message_started = 0.0
        self._control: list[bytes] = []  # framed pongs (and our close reply) for the writer
        self._unsent = b""  # the rest of a message send_now began: goes out before anything
        self.on_control: Callable[[], None] = lambda: None
        self._peer_closed = trio.Event()
        self.last_heard = trio.current_time()
        self.next_ping_at = self.last_heard + self.limits.ping_interval_s
        self.ping_due = False  # run_timers says a ping should go out
        self.close_code: int | None = None  # the code of the peer's close frame, if any
        self.closed_by: str | None = None  # why the connection ended (WebSocketClosed.reason)
        # wsproto events of the data received, not yet handed out (or the guard's refusal)
        self._pending: list[Any] = []
        self._reading = False  # a task is inside receive()
        self._tcp_closed = False
        self._close_waited = False  # close() has given the peer its time to answer
        # Bytes still to drop unparsed after an oversized message (None: not refusing one).
        self._discard: int | None = None
        # close() from the writer drains the socket when the reader is not inside receive();
        # the reader may be busy with the last message and come back meanwhile: whoever
        # reads holds this, so that two tasks never read the stream at once.
        self._receive_lock = trio.StrictFIFOLock()
        # The frame budget: a token bucket, counted from the guard's frame headers.
        self._frame_tokens = self.limits.frames_burst
        self._frames_counted = 0

    @property
    def open(self) -> bool:
        return self._ws.state is ConnectionState.OPEN

    # -- the reading task ------------------------------------------------------------------

    async def receive(self) -> bytes:
        """The next complete data message (a text message as its UTF-8 bytes)."""
        self._reading = True
        try:
            while True:
                while self._pending:
                    message = self._event(self._pending.pop(0))
                    if message is not None:
                        return message
                await self._read()
        finally:
            self._reading = False

    def feed(self, data: bytes | bytearray) -> None:
        """Bytes that arrived with the upgrade request (after its head): frames already."""
        if data:
            self._take(data)

    async def _read(self) -> None:
        """One read. It keeps no deadline of its own: ``run_timers`` watches the clock."""
        lock = self._receive_lock
        try:
            # The usual case, nobody else reading, takes the lock without a task switch
            # (``async with`` would yield to the scheduler once per message).
            lock.acquire_nowait()
        except trio.WouldBlock:
            await lock.acquire()
        try:
            data = await self._io.receive_some(self.limits.receive_chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise self._ended("broken", None, str(exc) or type(exc).__name__) from None
        finally:
            lock.release()
        if not data:
            raise self._ended("eof", None, "the peer closed TCP")
        self._take(data)

    async def run_timers(self, wake: Callable[[], None],
                         close: Callable[[int, str], None]) -> None:
        """The socket's clocks, in one task beside the reader and the writer (which keep no
        deadlines, so no message costs a timer): every ``ping_interval_s`` the writer is woken
        to send a ping (``ping_due``); a peer silent for ``idle_timeout_s``, or a message not
        finished ``message_timeout_s`` after its first byte, is closed with 1008 through
        ``close`` (the session's closing handshake). Returns once it has asked to close."""
        limits = self.limits
        while True:
            idle_at = self.last_heard + limits.idle_timeout_s
            message_at = (self._message_started + limits.message_timeout_s
                          if self._guard.mid_message else math.inf)
            # The next ping comes before either deadline can (both are longer than the ping
            # interval from whatever moves them), so sleeping until the soonest is exact.
            await trio.sleep_until(min(self.next_ping_at, idle_at, message_at))
            now = trio.current_time()
            if self._guard.mid_message and now >= \
                    self._message_started + limits.message_timeout_s:
                return self._timed_out(close, "slow_message", "Message not completed in time")
            if now >= self.last_heard + limits.idle_timeout_s:
                return self._timed_out(close, "idle", "No data from the client")
            if now >= self.next_ping_at:
                self.ping_due = True
                self.next_ping_at = now + limits.ping_interval_s
                wake()

    def _timed_out(self, close: Callable[[int, str], None], reason: str, text: str) -> None:
        if self.closed_by is None:
            self.closed_by = reason
        # No answer will come (the peer is silent, or inside a frame it does not finish):
        # our close frame goes out and TCP closes, without waiting for one.
        self._close_waited = True
        close(CLOSE_POLICY, text)

    def _take(self, data: bytes | bytearray) -> None:
        """Guard, then decode, what arrived; the events wait in ``_pending``."""
        now = trio.current_time()
        elapsed, self.last_heard = now - self.last_heard, now
        if self._discard is not None:  # after an oversized message: frames only, then drop
            closes = self._guard.closes
            self._guard.feed(data)
            self._discard -= len(data)
            if self._guard.closes != closes or self._discard < 0:
                self._pending.append(_DISCARDED)  # the peer answered, or had its share
            return
        was_mid, boundaries = self._guard.mid_message, self._guard.boundaries
        verdict = self._guard.feed(data) or self._over_frame_budget(elapsed)
        if verdict is not None:
            self._pending.append(verdict)  # the rest of this message is never kept
            return
        if self._guard.mid_message and (not was_mid or self._guard.boundaries != boundaries):
            # The unfinished message began in this chunk: a steady stream read in chunks
            # that each end inside a message is not one slow message.
            self._message_started = now
        self._ws.receive_data(data)  # type: ignore[arg-type]  # bytearray works
        self._pending.extend(self._ws.events())

    def _over_frame_budget(self, elapsed: float) -> FrameFlood | None:
        limits = self.limits
        # Each data message is the session's to limit (with a reply, then 4029); the budget
        # is for what comes besides: control frames and continuations.
        counted = self._guard.frames - self._guard.messages
        new, self._frames_counted = counted - self._frames_counted, counted
        self._frame_tokens = min(limits.frames_burst,
                                 self._frame_tokens + elapsed * limits.frames_per_s) - new
        return FrameFlood() if self._frame_tokens < 0 else None

    def _event(self, event: Any) -> bytes | None:
        if isinstance(event, Oversize):
            # The rest of the message is not read into memory: what comes during the closing
            # handshake is dropped unparsed (``_discard``), so that the peer, whose close
            # frame follows the message, can still read our 1009 before TCP closes.
            self._discard = self.limits.max_message
            raise self._refuse("too_big", CLOSE_TOO_BIG,
                               f"Message larger than {event.limit} bytes", wait_peer=True)
        if event is _DISCARDED:
            raise self._ended("too_big", CLOSE_TOO_BIG, "Message larger than the limit")
        if isinstance(event, FrameFlood):
            raise self._refuse("frame_flood", CLOSE_POLICY, "Too many frames")
        if isinstance(event, Message):
            data = event.data.encode() if isinstance(event, TextMessage) else event.data
            if not self.open:
                return None  # we are closing: what the peer sends meanwhile is dropped
            if event.message_finished and not self._parts:
                return data  # the whole message in one event: no copy
            self._parts += data
            if not event.message_finished:
                return None
            message = bytes(self._parts)
            self._parts.clear()
            return message
        if isinstance(event, Ping):
            if self.open:
                # Only the latest pong is owed (RFC 6455 §5.5.3): a peer that pings and does
                # not read cannot make them pile up. While open, _control holds only pongs.
                self._control[:] = [self._ws.send(event.response())]
                self.on_control()
            return None
        if isinstance(event, Pong):
            return None
        assert isinstance(event, CloseConnection)
        if self._ws.state is ConnectionState.OPEN:
            # wsproto reports a frame it could not parse as a close it did not receive.
            raise self._refuse("protocol", event.code, event.reason or "Protocol error")
        self.close_code = event.code
        self._peer_closed.set()
        if self._ws.state is ConnectionState.REMOTE_CLOSING:
            self._control.append(self._ws.send(event.response()))
            self.on_control()
        raise self._ended("closed", event.code, event.reason or "")

    def _refuse(self, reason: str, code: int, text: str, *,
                wait_peer: bool = False) -> WebSocketClosed:
        """A client error: our close frame goes out with the next write, then TCP closes
        (with ``wait_peer``, once the peer has answered or had its time)."""
        if self.open:
            self._control.append(self._ws.send(CloseConnection(code=code, reason=text)))
            self.on_control()
        if wait_peer:
            if self.closed_by is None:
                self.closed_by = reason
            return WebSocketClosed(reason, code, text)
        return self._ended(reason, code, text)

    def _ended(self, reason: str, code: int | None, detail: str) -> WebSocketClosed:
        if self.closed_by is None:
            self.closed_by = reason
        self._peer_closed.set()
        return WebSocketClosed(reason, code, detail)

    # -- the writing task ------------------------------------------------------------------

    def take_control(self) -> bytes:
        """What is owed to the peer before anything else: the rest of a message ``send_now``
        began, then control frames (pongs, a close reply)."""
        out = b"".join((self._unsent, *self._control))
        self._unsent = b""
        self._control.clear()
        return out

    def send_now(self, message: bytes) -> bool:
        """A binary message written at once, by whichever task has it, when the writing task
        is idle (its caller knows: ``Outbox.direct``), nothing is owed before it and the socket
        takes it without waiting. True if it went: what the kernel did not take yet is owed
        (``take_control``) and the writer is woken for it. False: nothing was written, the
        writer sends it. Plain sockets only (a TLS stream keeps its state in the writer)."""
        io = self._io
        if not isinstance(io, sockio.SocketIO) or self._unsent or self._control \
                or self._ws.state is not ConnectionState.OPEN:
            return False
        frame = self._ws.send(BytesMessage(data=message))
        sent = io.write_nowait(frame)
        if sent == 0:
            return False
        if sent < len(frame):
            self._unsent = frame[sent:]
            self.on_control()
        return True

    async def send_raw(self, frames: bytes) -> None:
        try:
            await self._io.send_all(frames)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise WebSocketClosed("broken", None, str(exc) or type(exc).__name__) from None

    async def send(self, *messages: bytes) -> None:
        """Binary messages, in one write (after any control frames owed)."""
        if not self.open:
            raise WebSocketClosed(self.closed_by or "closed")
        frames = [self._ws.send(BytesMessage(data=data)) for data in messages]
        if self._control or self._unsent:
            frames.insert(0, self.take_control())
        await self.send_raw(frames[0] if len(frames) == 1 else b"".join(frames))

    async def send_ping(self) -> None:
        self.ping_due = False
        if self.open:
            await self.send_raw(self.take_control() + self._ws.send(Ping()))

    async def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """The closing handshake from our side: our close frame (unless one went out), up to
        ``close_timeout_s`` for the peer's; then, unless another task is still reading (the
        session's teardown calls this again once it is not), the end of TCP. Never raises."""
        try:
            frames = self.take_control()
            if self.open:
                frames += self._ws.send(CloseConnection(code=code, reason=reason))
            if frames:
                with trio.move_on_after(self.limits.close_timeout_s):
                    await self.send_raw(frames)
            if not self._close_waited:  # the peer has close_timeout_s in all, not per call
                self._close_waited = True
                with trio.move_on_after(self.limits.close_timeout_s) as waited:
                    if self._reading:  # the reading task will see the peer's close frame
                        await self._peer_closed.wait()
                    else:  # nobody reads: drain until it comes (messages are dropped)
                        while not self._peer_closed.is_set():
                            await self.receive()
                if waited.cancelled_caught and self.closed_by is None:
                    self.closed_by = "close_timeout"
        except (WebSocketClosed, LocalProtocolError):
            pass
        if not self._reading:
            await self._finish_tcp()

    async def _finish_tcp(self) -> None:
        """After a completed closing handshake, a FIN first and a short wait for the peer's,
        reading and dropping what it still sends: closing a socket with unread data would
        reset the connection and could destroy our close frame before the peer reads it.
        Otherwise (or after ``LINGER_S``) the socket just closes."""
        if self._tcp_closed:
            return
        self._tcp_closed = True
        if self.close_code is not None and hasattr(self.stream, "send_eof"):
            with trio.move_on_after(LINGER_S):
                try:
                    await self.stream.send_eof()
                    async with self._receive_lock:  # the socket's one reader, as in receive()
                        while await self.stream.receive_some(self.limits.receive_chunk):
                            pass
                except (trio.BrokenResourceError, trio.ClosedResourceError,
                        trio.BusyResourceError):
                    pass
        await self.aclose()

    async def aclose(self) -> None:
        """Close TCP (and TLS) now."""
        await trio.aclose_forcefully(self.stream)
