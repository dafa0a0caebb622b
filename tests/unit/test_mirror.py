"""The hub's mirror of the state tables: loaded from the stream's snapshot, moved by changes."""

from __future__ import annotations

import uuid

from pgcall.pg.values import UNCHANGED
from pgcall.relay.mirror import CAPS, Mirror
from pgcall.wire import rowjson

from .fakes import (
    COLUMNS,
    T0,
    A,
    B,
    C,
    call,
    chat,
    delete,
    insert,
    settings,
    snapshot,
    transcript,
    update,
    user,
)

SID = uuid.UUID("a0f375ab-fd13-48b1-8ba0-a68734dddfb8")


def encoded(table: str, row: dict) -> dict:
    return rowjson.encode_row(COLUMNS[table], row)


def test_load_encodes_rows_as_clients_see_them() -> None:
    m = Mirror()
    m.load(snapshot(users=[user(A)], chat_messages=[chat(1)], call_sessions=[call(SID, A, B)],
                    media_settings=[settings()]))
    assert m.rows("users") == [encoded("users", user(A))]
    assert m.rows("chat_messages")[0]["id"] == "1"  # int8 as digits (§4.4)
    got = m.call(str(SID))
    assert got is not None and got["session_id"] == str(SID)
    assert got["answered_at"].endswith("Z")
    s = m.settings()
    assert s is not None and s["audio_talking_rms_threshold"] == 0.02  # float4 text, not f64


def test_load_replaces_everything_of_the_previous_stream() -> None:
    m = Mirror()
    m.load(snapshot(users=[user(A), user(B)], chat_messages=[chat(1)]))
    m.load(snapshot(users=[user(C)]))
    assert [r["identity"] for r in m.rows("users")] == [C]
    assert m.rows("chat_messages") == []


def test_insert_update_delete() -> None:
    m = Mirror()
    m.load(snapshot())
    new, old = m.apply(insert("users", user(A)))
    assert new == encoded("users", user(A)) and old is None
    renamed = user(A, "alice")
    new, old = m.apply(update("users", renamed, user(A)))
    assert new == encoded("users", renamed) and old == encoded("users", user(A))
    assert m.rows("users") == [encoded("users", renamed)]
    new, old = m.apply(delete("users", renamed))
    assert new is None and old == encoded("users", renamed)
    assert m.rows("users") == []


def test_delete_and_update_with_only_the_key_in_old() -> None:
    # Under REPLICA IDENTITY DEFAULT the old row of a delete is the primary key alone.
    m = Mirror()
    m.load(snapshot(call_sessions=[call(SID, A, B, "Ringing")], chat_messages=[chat(7)]))
    m.apply(update("call_sessions", call(SID, A, B, "Active"), None))
    got = m.call(str(SID))
    assert got is not None and got["state"] == "Active"
    _, old = m.apply(delete("call_sessions", {"session_id": SID}))
    assert old == {"session_id": str(SID)}
    assert m.call(str(SID)) is None
    m.apply(delete("chat_messages", {"id": 7}))
    assert m.rows("chat_messages") == []


def test_update_that_changes_the_key_moves_the_row() -> None:
    m = Mirror()
    m.load(snapshot(users=[user(A)]))
    m.apply(update("users", user(B), {"identity": A}))
    assert [r["identity"] for r in m.rows("users")] == [B]


def test_unchanged_toasted_value_keeps_the_previous_value() -> None:
    m = Mirror()
    long_name = "n" * 3000  # a value PostgreSQL would TOAST
    m.load(snapshot(users=[user(A, long_name)]))
    later = T0.replace(minute=5)
    row = user(A, at=later) | {"nickname": UNCHANGED}
    new, _ = m.apply(update("users", row, None))
    assert new is not None
    assert new["nickname"] == long_name
    assert new["connected_at"] == rowjson.encode_value(rowjson.TIMESTAMPTZ_OID, later)
    assert list(new) == [c for c, _ in COLUMNS["users"]]  # table column order is kept
    assert m.rows("users") == [new]


def test_chat_is_capped_at_the_newest_250_newest_first() -> None:
    cap = CAPS["chat_messages"]
    m = Mirror()
    m.load(snapshot(chat_messages=[chat(i) for i in range(1, 101)]))
    for i in range(101, cap + 61):
        m.apply(insert("chat_messages", chat(i)))
    ids = [int(r["id"]) for r in m.rows("chat_messages")]
    assert len(ids) == cap
    assert ids == list(range(cap + 60, 60, -1))  # descending, the oldest 60 gone


def test_chat_ids_compare_as_numbers_not_strings() -> None:
    m = Mirror()
    m.load(snapshot(chat_messages=[chat(9), chat(10), chat(100)]))
    assert [r["id"] for r in m.rows("chat_messages")] == ["100", "10", "9"]


def test_transcripts_are_capped_too() -> None:
    cap = CAPS["ai_transcripts"]
    m = Mirror()
    m.load(snapshot())
    for i in range(1, cap + 11):
        m.apply(insert("ai_transcripts", transcript(i, SID)))
    ids = [int(r["id"]) for r in m.rows("ai_transcripts")]
    assert ids == list(range(cap + 10, 10, -1))


def test_settings_update() -> None:
    m = Mirror()
    m.load(snapshot(media_settings=[settings()]))
    m.apply(update("media_settings", settings(video_fps=30), settings()))
    s = m.settings()
    assert s is not None and s["video_fps"] == 30
