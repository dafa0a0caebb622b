"""Reading and writing a plain TCP socket without a trip through trio's scheduler per call.

trio's ``SocketStream.receive_some`` and ``send_all`` each make up to two schedule points per
call, even when the data is already there or the kernel takes it at once: the task yields to
the scheduler, and every pass of the scheduler costs an ``epoll_wait``. A relayed frame is one
read and one write, so on the media path those yields were a third of the relay's task switches
(``docs/performance.md``). Here the system call is tried first and the task waits only when
the socket is not ready (``wait_readable`` / ``wait_writable``, which are schedule points and
honour cancellation). So that a reader fed faster than it reads cannot starve the other tasks,
every ``YIELD_EVERY``-th call that did not wait yields once.

A read that returned less than was asked for emptied the kernel's buffer, so the next read
waits for the socket first instead of trying: at 10 calls about half of the reads failed with
``EAGAIN`` right after one that had taken a whole frame (a system call and a caught exception
each, for nothing). A read that filled its buffer may have left more, and tries at once.

Only for a ``trio.SocketStream`` (TLS goes through ``SSLStream`` as before: ``for_stream``
returns the stream itself). Errors are trio's: ``BrokenResourceError`` when the peer reset or
the socket failed, ``ClosedResourceError`` once the socket is closed.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

import trio

YIELD_EVERY = 8  # calls that did not wait between two forced yields
A = TypeVar("A")
T = TypeVar("T")


class SocketIO:
    def __init__(self, stream: trio.SocketStream) -> None:
        self._sock = stream.socket
        self._unyielded = 0
        self._drained = False  # the last read took all the kernel had

    def _fd(self) -> int:
        fd = self._sock.fileno()
        if fd < 0:
            raise trio.ClosedResourceError("the socket is closed")
        return fd

    async def _fair(self) -> None:
        self._unyielded += 1
        if self._unyielded >= YIELD_EVERY:
            self._unyielded = 0
            await trio.lowlevel.checkpoint()

    async def _until_ready(self, ready: Callable[[trio.socket.SocketType], Awaitable[None]],
                           call: Callable[[int, A], T], arg: A, wait_first: bool = False) -> T:
        """``call(descriptor, arg)``, waiting for ``ready`` while it would block, and before
        trying when ``wait_first`` (the caller knows it would block)."""
        while True:
            if wait_first:
                wait_first = False
                self._fd()  # closed meanwhile: ClosedResourceError, as the call would raise
            else:
                try:
                    return call(self._fd(), arg)
                except BlockingIOError:
                    pass
                except OSError as exc:
                    raise _broken(exc) from None
            self._unyielded = 0
            await ready(self._sock)

    async def receive_some(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes``; ``b""`` at end of stream."""
        data = await self._until_ready(trio.lowlevel.wait_readable, os.read, max_bytes,
                                       wait_first=self._drained)
        self._drained = 0 < len(data) < max_bytes
        await self._fair()
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """All of ``data``, waiting while the kernel's buffer is full."""
        view = memoryview(data)
        while view:
            sent = await self._until_ready(trio.lowlevel.wait_writable, os.write, view)
            view = view[sent:]
        await self._fair()

    def write_nowait(self, data: bytes) -> int:
        """Write what the kernel takes now, without waiting: the bytes written (0 when the
        socket is full, closed or broken: the caller then leaves it to ``send_all``)."""
        try:
            return os.write(self._fd(), data)
        except (OSError, trio.ClosedResourceError):
            return 0


def _broken(exc: OSError) -> Exception:
    if exc.errno == errno.EBADF:
        return trio.ClosedResourceError("the socket is closed")
    return trio.BrokenResourceError(str(exc) or type(exc).__name__)


def for_stream(stream: trio.abc.Stream) -> SocketIO | trio.abc.Stream:
    """The fast reader and writer of a plain socket stream; any other stream as it is."""
    return SocketIO(stream) if isinstance(stream, trio.SocketStream) else stream
