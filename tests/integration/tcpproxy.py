"""A small TCP proxy for fault tests: it stands between pgcall and PostgreSQL and breaks the
network on demand.

Owns: listening on loopback (port 0), forwarding bytes both ways for every accepted
connection, and the faults a test switches on:

* ``cut()`` resets every connection open at that moment, both halves, with an RST (a
  rebooted middlebox, a dropped NAT entry that answers with resets);
* ``stall()`` stops forwarding on every connection open at that moment but keeps it open:
  nothing arrives, nothing is refused, no end is ever signalled (a peer that vanished, a
  partition). The proxy's kernel still acknowledges what it is sent, so only a silence at the
  application level can reveal it. New connections are not affected;
* ``pause()`` refuses new connections (accepted and reset at once, so a connect attempt fails
  fast instead of hanging) until ``resume()``.

Does not own: anything about PostgreSQL's protocol; it only moves bytes.
Runs in the test's trio nursery: ``port = await nursery.start(proxy.run)``.
"""

from __future__ import annotations

import socket
import struct

import trio

CHUNK = 65536


def _reset(stream: trio.SocketStream) -> None:
    """Make the coming close send an RST instead of a FIN (SO_LINGER on, timeout 0)."""
    try:
        stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:  # already closed
        pass


class _Link:
    """One proxied connection: the client's stream, PostgreSQL's, and the pumps between."""

    def __init__(self, client: trio.SocketStream, upstream: trio.SocketStream) -> None:
        self.client = client
        self.upstream = upstream
        self.pumps = trio.CancelScope()
        self.stalled = False
        self.cut = trio.Event()


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target_host:target_port``."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = 0  # known once ``run`` has started
        self.accepted = 0  # connections forwarded to the target
        self.refused = 0  # connections reset while paused
        self._paused = False
        self._links: set[_Link] = set()

    # -- faults (synchronous: callable from any task of the loop) -----------------------------

    def cut(self) -> int:
        """Reset every open connection (stalled ones too), now; returns how many."""
        links = list(self._links)
        for link in links:
            _reset(link.client)
            _reset(link.upstream)
            link.pumps.cancel()
            link.cut.set()
        return len(links)

    def stall(self) -> int:
        """Stop forwarding on every open connection, leaving it open; returns how many."""
        fresh = [link for link in self._links if not link.stalled]
        for link in fresh:
            link.stalled = True
            link.pumps.cancel()
        return len(fresh)

    def pause(self) -> None:
        """Refuse new connections until ``resume``; open ones are left alone."""
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    @property
    def open_links(self) -> int:
        return len(self._links)

    # -- serving --------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and forward until cancelled; ``started(port)``."""
        (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
        async with listener, trio.open_nursery() as nursery:
            self.port = listener.socket.getsockname()[1]
            task_status.started(self.port)
            while True:
                client = await listener.accept()
                nursery.start_soon(self._serve, client)

    async def _serve(self, client: trio.SocketStream) -> None:
        if self._paused:
            self.refused += 1
            _reset(client)
            client.socket.close()
            return
        try:
            upstream = await trio.open_tcp_stream(*self.target)
        except BaseException:  # target down, or the proxy cancelled
            _reset(client)
            client.socket.close()
            raise
        self.accepted += 1
        link = _Link(client, upstream)
        self._links.add(link)
        try:
            with link.pumps:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._pump, client, upstream, nursery.cancel_scope)
                    nursery.start_soon(self._pump, upstream, client, nursery.cancel_scope)
            if link.stalled:
                await link.cut.wait()  # silent and open until cut or the proxy ends
        finally:
            self._links.discard(link)
            # Closed at once, without a checkpoint: when the whole proxy is being cancelled,
            # an awaited close would raise Cancelled and leave the other socket open.
            client.socket.close()
            upstream.socket.close()

    @staticmethod
    async def _pump(src: trio.SocketStream, dst: trio.SocketStream,
                    done: trio.CancelScope) -> None:
        """Copy ``src`` to ``dst``; at EOF or error, end the whole link (both directions):
        PostgreSQL connections are never half-closed on purpose."""
        try:
            while data := await src.receive_some(CHUNK):
                await dst.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            done.cancel()
