"""A scripted replication source for deterministic tests of the hub and sessions.

Owns: a ``ReplicationSource`` whose streams yield exactly what the test pushes: transactions,
or raw bytes (CopyData messages, or bare pgoutput payloads) run through the real decoders;
and failures, which end the current stream like a lost connection does. Same interface as
the real source.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import attrs
import trio

from . import walproto
from .changes import Snapshot, Transaction, TransactionAssembler
from .conn import ConnectionLost
from .walproto import Lsn


@attrs.frozen
class CopyData:
    data: bytes


class ScriptedStream:
    def __init__(self, snapshot: Snapshot, receive: trio.MemoryReceiveChannel[Any]) -> None:
        self.snapshot = snapshot
        self._receive = receive
        self._assembler = TransactionAssembler()
        self.acked = Lsn(0)

    def ack(self, lsn: Lsn) -> None:
        self.acked = max(self.acked, lsn)

    async def run_feedback(self) -> None:
        """Nothing to tell a script: waits until the stream ends."""
        await trio.sleep_forever()

    def statistics(self) -> dict[str, Any]:
        return {"acked_lsn": str(self.acked), "lag_bytes": 0}

    def __aiter__(self) -> ScriptedStream:
        return self

    async def __anext__(self) -> Transaction:
        while True:
            item = await self._receive.receive()
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, Transaction):
                return item
            if isinstance(item, CopyData):
                msg = walproto.parse_copy_data(item.data)
                if isinstance(msg, walproto.PrimaryKeepalive):
                    continue
                item = msg.payload
            txn = self._assembler.feed(item)
            if txn is not None:
                return txn


class ScriptedSource:
    """``push``/``push_payload``/``fail`` from the test; ``opened`` counts streams opened."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.opened = 0
        self.refuse: BaseException | None = None  # set to make open() fail
        self._send: trio.MemorySendChannel[Any] | None = None
        self.stream: ScriptedStream | None = None

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[ScriptedStream]:
        if self.refuse is not None:
            raise self.refuse
        send, receive = trio.open_memory_channel[Any](1000)
        self._send = send
        self.opened += 1
        self.stream = ScriptedStream(self.snapshot, receive)
        try:
            yield self.stream
        finally:
            self._send = None
            self.stream = None

    def _put(self, item: Any) -> None:
        if self._send is None:
            raise RuntimeError("no stream is open")
        self._send.send_nowait(item)

    def push(self, txn: Transaction) -> None:
        self._put(txn)

    def push_payload(self, payload: bytes) -> None:
        """One pgoutput message (the payload of an XLogData)."""
        self._put(payload)

    def push_copy_data(self, data: bytes) -> None:
        """One CopyData message as the server sends it (XLogData or primary keepalive)."""
        self._put(CopyData(data))

    def fail(self, reason: str = "connection lost") -> None:
        self._put(ConnectionLost(reason))
