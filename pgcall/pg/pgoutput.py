"""Decoder for pgoutput's logical replication messages, proto_version 1 (pure, sans-IO).

Owns: turning the payload of one XLogData message (see `pgcall.pg.walproto`) into a
frozen event object (`Begin`, `Commit`, `Origin`, `Relation`, `TypeInfo`, `Insert`,
`Update`, `Delete`, `Truncate`, `Message`), and `RelationCache`, the per-stream map
from relation OID to the last `Relation` seen (pgoutput sends a Relation before the
first change of a table and again after its schema changes).

Does not own: converting column values to Python objects (`pgcall.pg.values` does
that, by type OID, as a separate step), the CopyData/XLogData framing, or any I/O.
Column values stay raw: zero-copy `memoryview` slices of the input, so a 30 KB
bytea costs no copy here.

Only proto_version 1 is decoded. The streaming messages of proto_version 2
(Stream Start/Stop/Commit/Abort) and the two-phase messages of version 3 are
rejected as unknown: pgcall starts replication with ``proto_version '1'``, where
``messages 'true'`` (the ``M`` message) and ``binary 'true'`` both work.

Reference: PostgreSQL docs, "Logical Replication Message Formats"
(protocol-logicalrep-message-formats.html). Int8/Int16/Int32/Int64 there are
big-endian; String is NUL-terminated (decoded as UTF-8, the server encoding we
require).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import attrs

from pgcall.pg.walproto import Lsn, lsn_of_u64

__all__ = [
    "Begin",
    "Column",
    "Commit",
    "Delete",
    "Insert",
    "Message",
    "Origin",
    "PgOutputError",
    "Relation",
    "RelationCache",
    "Truncate",
    "TupleData",
    "TypeInfo",
    "Update",
    "decode",
]


class PgOutputError(ValueError):
    """The bytes are not a well-formed pgoutput proto_version 1 message."""


# --- events ---------------------------------------------------------------------------


@attrs.frozen
class Begin:
    final_lsn: Lsn  # LSN of the transaction's commit record
    commit_time: int  # microseconds since 2000-01-01 UTC
    xid: int


@attrs.frozen
class Commit:
    flags: int  # currently unused by PostgreSQL, always 0
    commit_lsn: Lsn
    end_lsn: Lsn  # end of the commit record: where the next transaction may start
    commit_time: int


@attrs.frozen
class Origin:
    commit_lsn: Lsn  # the LSN of the commit on the origin server
    name: str


@attrs.frozen
class Column:
    flags: int  # bit 1: the column is part of the replica identity (the key)
    name: str
    type_oid: int
    type_modifier: int  # atttypmod, -1 when the type has none


@attrs.frozen
class Relation:
    oid: int
    namespace: str  # empty string for pg_catalog
    name: str
    replica_identity: str  # relreplident: "d"efault, "n"othing, "f"ull, "i"ndex
    columns: tuple[Column, ...]


@attrs.frozen
class TypeInfo:
    """``Y``: sent before a Relation that uses a non-built-in type (enum, domain, ...)."""

    oid: int
    namespace: str
    name: str


@attrs.frozen
class TupleData:
    """One row: ``kinds[i]`` is one of ``n`` null, ``u`` unchanged TOAST, ``t`` text,
    ``b`` binary; ``values[i]`` is None for n/u, else a slice of the message."""

    kinds: bytes
    values: tuple[bytes | memoryview | None, ...]


@attrs.frozen
class Insert:
    relation_oid: int
    new: TupleData


@attrs.frozen
class Update:
    relation_oid: int
    # "K": old key columns (replica identity changed), "O": whole old row
    # (REPLICA IDENTITY FULL), None: no old row sent.
    old: TupleData | None
    old_kind: str | None
    new: TupleData


@attrs.frozen
class Delete:
    relation_oid: int
    old: TupleData
    old_kind: str  # "K" or "O", as for Update


@attrs.frozen
class Truncate:
    options: int  # bit 1: CASCADE, bit 2: RESTART IDENTITY
    relation_oids: tuple[int, ...]


@attrs.frozen
class Message:
    """``M``: a logical decoding message from ``pg_logical_emit_message``."""

    transactional: bool
    lsn: Lsn
    prefix: str
    content: bytes | memoryview


Event = (
    Begin | Commit | Origin | Relation | TypeInfo | Insert | Update | Delete | Truncate | Message
)

# --- primitives -----------------------------------------------------------------------

_BEGIN = struct.Struct(">xQqI")  # final LSN, commit timestamp, xid
_COMMIT = struct.Struct(">xBQQq")  # flags, commit LSN, end LSN, commit timestamp
_U32 = struct.Struct(">I")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_U64 = struct.Struct(">Q")
_OID_AND_BYTE = struct.Struct(">IB")
_COLUMN_TAIL = struct.Struct(">Ii")  # type OID, type modifier
_TRUNCATE_HEAD = struct.Struct(">xIB")  # number of relations, options
_MESSAGE_HEAD = struct.Struct(">xBQ")  # flags, LSN

_K, _O, _N = ord("K"), ord("O"), ord("N")
_KIND_NULL, _KIND_UNCHANGED, _KIND_TEXT, _KIND_BINARY = b"nutb"
_REPLICA_IDENTITIES = frozenset("dnfi")


def _cstring(view: memoryview, pos: int) -> tuple[str, int]:
    """Read a NUL-terminated UTF-8 string; memoryview has no find(), so search
    growing windows (names are at most 63 bytes, so one window is the usual case)."""
    window = 64
    while True:
        chunk = bytes(view[pos : pos + window])
        end = chunk.find(0)
        if end >= 0:
            return chunk[:end].decode("utf-8"), pos + end + 1
        if pos + window >= len(view):
            raise PgOutputError("unterminated string")
        window *= 4


def _tuple(view: memoryview, pos: int) -> tuple[TupleData, int]:
    """TupleData: Int16 column count, then per column a kind byte and for t/b an
    Int32 length and the value."""
    (count,) = _I16.unpack_from(view, pos)
    if count < 0:
        raise PgOutputError(f"negative column count {count}")
    pos += 2
    size = len(view)
    kinds = bytearray(count)
    values: list[memoryview | None] = [None] * count
    for i in range(count):
        kind = kinds[i] = view[pos]
        pos += 1
        if kind == _KIND_TEXT or kind == _KIND_BINARY:
            (length,) = _I32.unpack_from(view, pos)
            pos += 4
            end = pos + length
            if length < 0 or end > size:
                raise PgOutputError(f"column {i}: bad value length {length}")
            values[i] = view[pos:end]
            pos = end
        elif kind != _KIND_NULL and kind != _KIND_UNCHANGED:
            raise PgOutputError(f"column {i}: unknown tuple data kind {kind:#04x}")
    return TupleData(bytes(kinds), tuple(values)), pos


def _done(view: memoryview, pos: int) -> None:
    if pos != len(view):
        raise PgOutputError(f"{len(view) - pos} trailing bytes after message")


# --- messages -------------------------------------------------------------------------


def _begin(view: memoryview) -> Begin:
    lsn, commit_time, xid = _BEGIN.unpack_from(view)
    _done(view, _BEGIN.size)
    return Begin(lsn_of_u64(lsn), commit_time, xid)


def _commit(view: memoryview) -> Commit:
    flags, commit_lsn, end_lsn, commit_time = _COMMIT.unpack_from(view)
    _done(view, _COMMIT.size)
    return Commit(flags, lsn_of_u64(commit_lsn), lsn_of_u64(end_lsn), commit_time)


def _origin(view: memoryview) -> Origin:
    (lsn,) = _U64.unpack_from(view, 1)
    name, pos = _cstring(view, 9)
    _done(view, pos)
    return Origin(Lsn(lsn), name)


def _relation(view: memoryview) -> Relation:
    (oid,) = _U32.unpack_from(view, 1)
    namespace, pos = _cstring(view, 5)
    name, pos = _cstring(view, pos)
    identity = chr(view[pos])
    if identity not in _REPLICA_IDENTITIES:
        raise PgOutputError(f"unknown replica identity {identity!r}")
    (count,) = _I16.unpack_from(view, pos + 1)
    if count < 0:
        raise PgOutputError(f"negative column count {count}")
    pos += 3
    columns = []
    for _ in range(count):
        flags = view[pos]
        col_name, pos = _cstring(view, pos + 1)
        type_oid, type_modifier = _COLUMN_TAIL.unpack_from(view, pos)
        pos += _COLUMN_TAIL.size
        columns.append(Column(flags, col_name, type_oid, type_modifier))
    _done(view, pos)
    return Relation(oid, namespace, name, identity, tuple(columns))


def _type(view: memoryview) -> TypeInfo:
    (oid,) = _U32.unpack_from(view, 1)
    namespace, pos = _cstring(view, 5)
    name, pos = _cstring(view, pos)
    _done(view, pos)
    return TypeInfo(oid, namespace, name)


def _insert(view: memoryview) -> Insert:
    oid, marker = _OID_AND_BYTE.unpack_from(view, 1)
    if marker != _N:
        raise PgOutputError(f"Insert: expected 'N', got {marker:#04x}")
    new, pos = _tuple(view, 6)
    _done(view, pos)
    return Insert(oid, new)


def _update(view: memoryview) -> Update:
    oid, marker = _OID_AND_BYTE.unpack_from(view, 1)
    old = old_kind = None
    pos = 6
    if marker == _K or marker == _O:
        old_kind = chr(marker)
        old, pos = _tuple(view, pos)
        marker = view[pos]
        pos += 1
    if marker != _N:
        raise PgOutputError(f"Update: expected 'N', got {marker:#04x}")
    new, pos = _tuple(view, pos)
    _done(view, pos)
    return Update(oid, old, old_kind, new)


def _delete(view: memoryview) -> Delete:
    oid, marker = _OID_AND_BYTE.unpack_from(view, 1)
    if marker != _K and marker != _O:
        raise PgOutputError(f"Delete: expected 'K' or 'O', got {marker:#04x}")
    old, pos = _tuple(view, 6)
    _done(view, pos)
    return Delete(oid, old, chr(marker))


def _truncate(view: memoryview) -> Truncate:
    count, options = _TRUNCATE_HEAD.unpack_from(view)
    # Check the length before unpacking: a corrupt count must not build a huge format.
    expected = _TRUNCATE_HEAD.size + 4 * count
    if expected != len(view):
        raise PgOutputError(f"Truncate of {count} relations is {expected} bytes, got {len(view)}")
    oids = struct.unpack_from(f">{count}I", view, _TRUNCATE_HEAD.size)
    return Truncate(options, oids)


def _message(view: memoryview) -> Message:
    flags, lsn = _MESSAGE_HEAD.unpack_from(view)
    prefix, pos = _cstring(view, _MESSAGE_HEAD.size)
    (length,) = _I32.unpack_from(view, pos)
    pos += 4
    if length < 0:
        raise PgOutputError(f"negative message length {length}")
    _done(view, pos + length)
    return Message(bool(flags & 1), Lsn(lsn), prefix, view[pos:])


_DECODERS: dict[int, Callable[[memoryview], Event]] = {
    ord("B"): _begin,
    ord("C"): _commit,
    ord("O"): _origin,
    ord("R"): _relation,
    ord("Y"): _type,
    ord("I"): _insert,
    ord("U"): _update,
    ord("D"): _delete,
    ord("T"): _truncate,
    ord("M"): _message,
}


def decode(data: bytes | memoryview) -> Event:
    """Decode one pgoutput message (the payload of an XLogData).

    Raises `PgOutputError` (and nothing else) for malformed input: unknown or
    unsupported tag, truncated message, trailing bytes, unknown tuple data kind,
    invalid UTF-8 in a name.
    """
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    if not view:
        raise PgOutputError("empty message")
    decoder = _DECODERS.get(view[0])
    if decoder is None:
        raise PgOutputError(f"unknown or unsupported message tag {view[0]:#04x}")
    try:
        return decoder(view)
    except (struct.error, IndexError) as exc:
        raise PgOutputError(f"truncated {chr(view[0])!r} message") from exc
    except UnicodeDecodeError as exc:
        raise PgOutputError(f"invalid UTF-8 in {chr(view[0])!r} message") from exc


class RelationCache:
    """Relation OID -> latest `Relation` of one replication stream."""

    __slots__ = ("_relations",)

    def __init__(self) -> None:
        self._relations: dict[int, Relation] = {}

    def add(self, rel: Relation) -> None:
        self._relations[rel.oid] = rel

    def get(self, oid: int) -> Relation:
        try:
            return self._relations[oid]
        except KeyError:
            raise PgOutputError(f"change for relation {oid} before its Relation message") from None

    def clear(self) -> None:
        self._relations.clear()

    def __contains__(self, oid: object) -> bool:
        return oid in self._relations

    def __len__(self) -> int:
        return len(self._relations)
