"""What the replication stream hands to the hub: committed transactions of row changes, and the
state snapshot the stream starts from.

Owns: these value objects and ``TransactionAssembler``, which turns the pgoutput messages of
the stream (relation cache, row decoding) into them. Does not own: the transport (``stream``)
or what is done with a change (``hub``).
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from . import pgoutput
from .values import RowDecoder
from .walproto import Lsn

Columns = tuple[tuple[str, int], ...]  # (name, type OID) in table order


@attrs.frozen
class Change:
    table: str
    op: Literal["insert", "update", "delete"]
    columns: Columns
    row: dict[str, Any] | None  # the new row (insert, update)
    old: dict[str, Any] | None  # the old row (update, delete) under REPLICA IDENTITY FULL/key


@attrs.frozen
class LogicalMessage:
    """A transactional ``pg_logical_emit_message`` (prefix, content)."""

    prefix: str
    content: bytes | memoryview


@attrs.frozen
class Transaction:
    end_lsn: Lsn
    commit_time: int  # microseconds since 2000-01-01 UTC
    changes: tuple[Change | LogicalMessage, ...]


@attrs.frozen
class TableRows:
    columns: Columns
    rows: tuple[dict[str, Any], ...]


@attrs.frozen
class Snapshot:
    """The state tables as of the point the stream starts from: nothing in between is lost or
    seen twice (the slot's exported snapshot)."""

    tables: dict[str, TableRows]


class TransactionAssembler:
    """Feed pgoutput message payloads in stream order; get a Transaction at each Commit."""

    def __init__(self) -> None:
        self._relations = pgoutput.RelationCache()
        self._decoders: dict[int, tuple[str, Columns, RowDecoder]] = {}
        self._pending: list[Change | LogicalMessage] = []
        self.in_transaction = False

    def _decoder(self, oid: int) -> tuple[str, Columns, RowDecoder]:
        found = self._decoders.get(oid)
        if found is None:
            rel = self._relations.get(oid)
            columns = tuple((c.name, c.type_oid) for c in rel.columns)
            found = self._decoders[oid] = (rel.name, columns, RowDecoder(rel))
        return found

    def feed(self, payload: bytes | memoryview) -> Transaction | None:
        msg = pgoutput.decode(payload)
        if isinstance(msg, pgoutput.Insert):
            table, columns, dec = self._decoder(msg.relation_oid)
            self._pending.append(Change(table, "insert", columns, dec.decode(msg.new), None))
        elif isinstance(msg, pgoutput.Update):
            table, columns, dec = self._decoder(msg.relation_oid)
            old = dec.decode(msg.old) if msg.old is not None else None
            self._pending.append(Change(table, "update", columns, dec.decode(msg.new), old))
        elif isinstance(msg, pgoutput.Delete):
            table, columns, dec = self._decoder(msg.relation_oid)
            self._pending.append(Change(table, "delete", columns, None, dec.decode(msg.old)))
        elif isinstance(msg, pgoutput.Commit):
            txn = Transaction(msg.end_lsn, msg.commit_time, tuple(self._pending))
            self._pending.clear()
            self.in_transaction = False
            return txn
        elif isinstance(msg, pgoutput.Begin):
            self._pending.clear()
            self.in_transaction = True
        elif isinstance(msg, pgoutput.Relation):
            self._relations.add(msg)
            self._decoders.pop(msg.oid, None)  # the table may have changed shape
        elif isinstance(msg, pgoutput.Message) and msg.transactional:
            self._pending.append(LogicalMessage(msg.prefix, msg.content))
        # Origin, Type, Truncate and non-transactional messages carry nothing pgcall relays.
        return None
