"""The hub against scripted changes: routing (protocol.md §4.3, §4.6), snapshot/live fencing
(§4.1, §4.2), replacement (§5), media checks (§3.1), slow clients and stream restarts."""

from __future__ import annotations

import json
import uuid

import pytest
import trio
import trio.testing

from pgcall.pg.changes import Change, LogicalMessage
from pgcall.pg.scripted import ScriptedSource
from pgcall.pg.values import UNCHANGED
from pgcall.relay.hub import Hub
from pgcall.relay.outbox import OutboxLimits
from pgcall.relay.replication import ReplicationStatus, run_replication
from pgcall.wire import protocol, rowjson

from .fakes import (
    COLUMNS,
    STATE_TABLES,
    T0,
    A,
    B,
    C,
    D,
    Sub,
    audio,
    call,
    chat,
    delete,
    drops,
    insert,
    jpeg,
    settings,
    snapshot,
    transcript,
    txn,
    update,
    user,
    video,
)

SID = uuid.UUID("a0f375ab-fd13-48b1-8ba0-a68734dddfb8")
SID2 = uuid.UUID("0badc0de-0000-4000-8000-000000000002")


def hub_with(**tables: list[dict]) -> Hub:
    hub = Hub()
    hub.restart(snapshot(**tables))
    return hub


def join(hub: Hub, identity: str, limits: OutboxLimits | None = None) -> Sub:
    """A subscriber that has claimed, subscribed, and read its snapshot."""
    sub = Sub(identity, limits)
    assert hub.claim(sub) is None
    hub.subscribe(sub)
    got = sub.drain()
    assert [(k, m["type"], m["table"]) for k, m, _ in got] == [
        ("control", "snapshot", t) for t in STATE_TABLES]
    return sub


def snapshot_of(messages: list, table: str) -> list[dict]:
    (rows,) = [m["rows"] for k, m, _ in messages if m.get("table") == table]
    return rows


def enc(table: str, row: dict) -> dict:
    return rowjson.encode_row(COLUMNS[table], row)


# -- routing -----------------------------------------------------------------------------------

BROADCAST = [
    insert("users", user(C)),
    update("users", user(A, "alice"), user(A)),
    delete("users", user(B)),
    insert("chat_messages", chat(42, B, "hello")),
    update("media_settings", settings(video_fps=30), settings()),
    insert("ai_transcripts", transcript(3, SID)),
]


@pytest.mark.parametrize("change", BROADCAST, ids=lambda c: f"{c.table}-{c.op}")
def test_state_events_reach_every_subscriber(change: Change) -> None:
    hub = hub_with(users=[user(A), user(B)], media_settings=[settings()])
    subs = [join(hub, i) for i in (A, B, C)]
    hub.publish(txn(change))
    expected = {"type": change.op, "table": change.table}
    if change.row is not None:
        expected["row"] = enc(change.table, change.row)
    if change.op != "insert":
        assert change.old is not None
        expected["old"] = enc(change.table, change.old)
    for sub in subs:
        assert [m for _, m, _ in sub.drain()] == [expected]


def test_chat_event_json_uses_pg_relays_encoding() -> None:
    hub = hub_with()
    sub = join(hub, A)
    hub.publish(txn(insert("chat_messages", chat(42, B, "héllo"))))
    data = sub.outbox.get_nowait()
    assert data is not None and len(sub.outbox) == 0
    assert data[:1] == b"\x00"
    assert json.loads(data[1:]) == {"type": "insert", "table": "chat_messages", "row": {
        "id": "42", "sender": B, "sent_at": "2026-11-25T18:01:29.333Z", "text": "héllo"}}
    assert "héllo".encode() in data  # raw UTF-8, as JSON.stringify sends it


def test_call_events_reach_only_caller_and_callee() -> None:
    hub = hub_with(users=[user(i) for i in (A, B, C)])
    a, b, c = (join(hub, i) for i in (A, B, C))
    ringing, active = call(SID, A, B, "Ringing"), call(SID, A, B, "Active")
    hub.publish(txn(insert("call_sessions", ringing)))
    hub.publish(txn(update("call_sessions", active, ringing)))
    hub.publish(txn(delete("call_sessions", active)))
    expected = [
        {"type": "insert", "table": "call_sessions", "row": enc("call_sessions", ringing)},
        {"type": "update", "table": "call_sessions", "row": enc("call_sessions", active),
         "old": enc("call_sessions", ringing)},
        {"type": "delete", "table": "call_sessions", "old": enc("call_sessions", active)},
    ]
    assert [m for _, m, _ in a.drain()] == expected
    assert [m for _, m, _ in b.drain()] == expected
    assert c.drain() == []


def test_call_delete_with_only_the_key_still_reaches_both_participants() -> None:
    # A delete's old row is the key alone under REPLICA IDENTITY DEFAULT (DESIGN.md §2); the
    # mirror knows the whole row, so the participants must still hear that the call ended.
    hub = hub_with(call_sessions=[call(SID, A, B)])
    a, b = join(hub, A), join(hub, B)
    hub.publish(txn(delete("call_sessions", {"session_id": SID})))
    for sub in (a, b):
        got = [m for _, m, _ in sub.drain()]
        assert [(m["type"], m["old"]["session_id"]) for m in got] == [("delete", str(SID))]


def test_call_rows_in_snapshots_only_for_participants() -> None:
    calls = [call(SID, A, B), call(SID2, C, D, "Ringing", "Voice")]
    hub = hub_with(call_sessions=calls)
    for identity, expected in ((A, [calls[0]]), (B, [calls[0]]), (C, [calls[1]]),
                               (D, [calls[1]]), ("e" * 64, [])):
        rows = snapshot_of([("control", json.loads(m[1:]), b"")
                            for m in hub.snapshot_messages(identity)], "call_sessions")
        assert rows == [enc("call_sessions", r) for r in expected]


def test_video_frame_goes_to_to_id_only_encoded_per_4_6() -> None:
    hub = hub_with(call_sessions=[call(SID, A, B)])
    a, b, c = (join(hub, i) for i in (A, B, C))
    payload = jpeg(7, 30_000)
    hub.publish(txn(video(SID, A, B, 7, payload, 320, 180)))
    assert a.drain() == [] and c.drain() == []  # never echoed, never to a bystander
    data = b.outbox.get_nowait()
    assert data is not None
    header = json.dumps({"session_id": str(SID), "from": A, "seq": 7, "width": 320,
                         "height": 180}, separators=(",", ":")).encode()
    assert data == b"\x02" + len(header).to_bytes(4, "big") + header + payload
    assert hub.stats.frames_out["video"] == 1


def test_audio_frame_header_order_and_rms_as_float4_text() -> None:
    hub = hub_with(call_sessions=[call(SID, A, B, call_type="Voice")])
    a, b = join(hub, A), join(hub, B)
    pcm = bytes(range(256)) * 6 + b"\x00" * 64  # 1600 bytes: 50 ms at 16 kHz
    hub.publish(txn(audio(SID, B, A, 17, pcm, rms=0.012345678901, sample_rate=16000)))
    assert b.drain() == []
    data = a.outbox.get_nowait()
    assert data is not None and data[0] == 1
    hlen = int.from_bytes(data[1:5], "big")
    head = data[5 : 5 + hlen]
    assert head == (b'{"session_id":"' + str(SID).encode() + b'","from":"' + B.encode()
                    + b'","seq":17,"sample_rate":16000,"channels":1,"rms":0.012345679}')
    assert len(head) == 187  # protocol.md §4.8's worked example
    assert data[5 + hlen :] == pcm


def test_frames_to_an_absent_identity_are_counted_unroutable() -> None:
    hub = hub_with(call_sessions=[call(SID, A, B)])
    a = join(hub, A)
    hub.publish(txn(video(SID, A, B, 1, jpeg(1)), audio(SID, A, B, 1, b"\x00\x00")))
    assert hub.stats.frames_unroutable == 2
    assert hub.stats.frames_in == {"audio": 1, "video": 1}
    assert hub.stats.frames_out == {"audio": 0, "video": 0}
    assert a.drain() == []


def test_non_events_are_ignored() -> None:
    hub = hub_with()
    a = join(hub, A)
    presence = Change("pgcall_presence", "insert", (("identity", 25), ("instance_id", 20)),
                      {"identity": A, "instance_id": 1}, None)
    frame_delete = Change("video_frames", "delete", COLUMNS["video_frames"], None, {"id": 3})
    hub.publish(txn(LogicalMessage("pgcall", b"x"), presence, frame_delete))
    assert a.drain() == []
    assert hub.stats.transactions == 1


def test_events_arrive_in_publish_order() -> None:
    hub = hub_with(call_sessions=[call(SID, A, B)])
    b = join(hub, B, OutboxLimits(max_video=100, max_audio=100))
    published: list[tuple[str, object]] = []
    for i in range(30):
        if i % 3 == 0:
            hub.publish(txn(insert("chat_messages", chat(i))))
            published.append(("control", str(i)))
        elif i % 3 == 1:
            hub.publish(txn(video(SID, A, B, i, jpeg(i)), audio(SID, A, B, i, b"\x01\x00")))
            published += [("video", i), ("audio", i)]
        else:
            hub.publish(txn(insert("chat_messages", chat(i)), video(SID, A, B, i, jpeg(i))))
            published += [("control", str(i)), ("video", i)]
    got = [(k, m["row"]["id"] if k == "control" else m["seq"]) for k, m, _ in b.drain()]
    assert got == published


def test_update_with_an_unchanged_value_carries_the_previous_value() -> None:
    long_name = "x" * 4000
    hub = hub_with(users=[user(A, long_name)])
    b = join(hub, B)
    later = T0.replace(hour=19)
    hub.publish(txn(update("users", user(A, at=later) | {"nickname": UNCHANGED}, None)))
    ((_, m, _),) = b.drain()
    assert m["row"]["nickname"] == long_name
    assert m["row"]["connected_at"] == "2026-11-25T19:00:47.333Z"


# -- snapshot and live events --------------------------------------------------------------------


def chat_ids(messages: list) -> list[str]:
    ids = []
    for _, m, _ in messages:
        if m["type"] == "snapshot" and m["table"] == "chat_messages":
            ids += [r["id"] for r in m["rows"]]
        elif m["type"] == "insert" and m["table"] == "chat_messages":
            ids.append(m["row"]["id"])
    return ids


def test_snapshot_then_only_events_published_after_subscribe() -> None:
    hub = hub_with(chat_messages=[chat(1), chat(2)])
    hub.publish(txn(insert("chat_messages", chat(3))))
    sub = Sub(A)
    hub.claim(sub)
    hub.publish(txn(insert("chat_messages", chat(4))))  # claimed, not yet subscribed
    hub.subscribe(sub)
    hub.publish(txn(insert("chat_messages", chat(5))))
    got = sub.drain()
    assert [m["type"] for _, m, _ in got] == ["snapshot"] * len(STATE_TABLES) + ["insert"]
    assert sorted(chat_ids(got), key=int) == ["1", "2", "3", "4", "5"]


def test_subscribers_joining_at_any_point_see_every_row_exactly_once() -> None:
    hub = hub_with(users=[user(A)], chat_messages=[chat(1)])
    subs: list[Sub] = []
    ident = iter(f"{n:064x}" for n in range(1, 100))
    for i in range(2, 40):
        if i % 4 == 0:
            sub = Sub(next(ident))
            hub.claim(sub)
            hub.subscribe(sub)
            subs.append(sub)
        hub.publish(txn(insert("chat_messages", chat(i))))
        if i % 7 == 0:
            hub.publish(txn(insert("users", user(f"{i:064x}"[::-1]))))
    final = [r["id"] for r in hub.mirror.rows("chat_messages")]
    assert len(subs) == 9
    for sub in subs:
        got = chat_ids(sub.drain())
        assert len(got) == len(set(got)), "a row was delivered twice"
        assert sorted(got) == sorted(final), "a row was lost"


def test_restart_gives_every_subscriber_a_fresh_full_snapshot() -> None:
    hub = hub_with(users=[user(A), user(B)], chat_messages=[chat(1)],
                   call_sessions=[call(SID, A, B)], media_settings=[settings()])
    a, c = join(hub, A), join(hub, C)
    # Rows committed while the stream was down are in the new snapshot, not in events.
    hub.restart(snapshot(users=[user(A), user(C)], chat_messages=[chat(1), chat(2)],
                         call_sessions=[call(SID2, A, C, "Ringing")],
                         media_settings=[settings(video_fps=10)]))
    assert hub.stats.restarts == 2
    for sub in (a, c):
        got = sub.drain()
        assert [m["table"] for _, m, _ in got] == list(STATE_TABLES)
        assert [r["identity"] for r in snapshot_of(got, "users")] == [A, C]
        assert [r["id"] for r in snapshot_of(got, "chat_messages")] == ["2", "1"]
        assert [r["session_id"] for r in snapshot_of(got, "call_sessions")] == [str(SID2)]
        assert snapshot_of(got, "media_settings")[0]["video_fps"] == 10


def test_chat_snapshot_holds_the_newest_250_after_many_events() -> None:
    hub = hub_with(chat_messages=[chat(i) for i in range(1, 201)])
    for i in range(201, 301):
        hub.publish(txn(insert("chat_messages", chat(i))))
    rows = snapshot_of(join_messages(hub, A), "chat_messages")
    assert [r["id"] for r in rows] == [str(i) for i in range(300, 50, -1)]


def join_messages(hub: Hub, identity: str) -> list:
    sub = Sub(identity)
    hub.claim(sub)
    hub.subscribe(sub)
    return sub.drain()


# -- replacement --------------------------------------------------------------------------------


def test_claim_by_a_second_connection_replaces_the_first() -> None:
    hub = hub_with()
    first = join(hub, A)
    second = Sub(A)
    assert hub.claim(second) is first
    hub.publish(txn(insert("chat_messages", chat(1))))
    assert first.drain() == []  # the replaced connection stops receiving at once
    hub.subscribe(second)
    hub.publish(txn(insert("chat_messages", chat(2))))
    assert first.drain() == []
    assert chat_ids(second.drain()) == ["1", "2"]
    assert hub.release(first) is False  # it must not take the user offline
    assert hub.subscribers[A] is second and hub.owners[A] is second
    assert hub.release(second) is True
    assert A not in hub.subscribers and A not in hub.owners


def test_a_replaced_connection_that_subscribes_late_gets_nothing() -> None:
    hub = hub_with()
    first, second = Sub(A), Sub(A)
    hub.claim(first)
    hub.claim(second)
    hub.subscribe(first)  # still waiting for its users row when it was replaced
    assert first.drain() == []
    hub.subscribe(second)
    assert len(second.drain()) == len(STATE_TABLES)
    assert hub.release(first) is False
    assert hub.release(second) is True


async def test_wait_no_owners_ends_when_the_last_owner_leaves() -> None:
    hub = hub_with()
    a, b = join(hub, A), join(hub, B)
    done = trio.Event()

    async def waiter() -> None:
        await hub.wait_no_owners()
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        hub.release(a)
        await trio.testing.wait_all_tasks_blocked()
        assert not done.is_set()
        hub.release(b)
    assert done.is_set()


def test_an_overflowing_subscriber_is_told() -> None:
    hub = hub_with()
    slow = join(hub, A, OutboxLimits(max_state=len(STATE_TABLES)))
    for i in range(len(STATE_TABLES) + 2):
        hub.publish(txn(insert("chat_messages", chat(i))))
    assert slow.overflows == 2
    assert slow.outbox.close_request == (4008, "Too far behind")


# -- media authorization (protocol.md §3.1 steps 1-4) -----------------------------------------


def test_media_check_errors_in_order() -> None:
    ringing = uuid.UUID(int=1)
    voice = uuid.UUID(int=2)
    hub = hub_with(call_sessions=[call(SID, A, B), call(ringing, A, C, "Ringing"),
                                  call(voice, C, D, "Active", "Voice")])
    check = hub.media_check
    unknown = str(uuid.UUID(int=99))
    assert check(A, "video", unknown, B) == protocol.ERR_SESSION_NOT_FOUND
    # Each later check is reached only when the earlier ones pass, whatever else is wrong.
    assert check(D, "video", str(ringing), D) == protocol.ERR_NOT_ACTIVE
    assert check(A, "audio", str(ringing), C) == protocol.ERR_NOT_ACTIVE
    assert check(A, "video", str(voice), B) == protocol.ERR_NOT_VIDEO
    assert check(C, "video", str(voice), D) == protocol.ERR_NOT_VIDEO
    assert check(C, "audio", str(voice), D) is None  # audio in a voice call is fine
    assert check(C, "audio", str(voice), A) == protocol.ERR_RECIPIENT
    assert check(A, "video", str(SID), C) == protocol.ERR_RECIPIENT  # `to` not the peer
    assert check(C, "video", str(SID), B) == protocol.ERR_RECIPIENT  # sender not in the call
    assert check(A, "video", str(SID), A) == protocol.ERR_RECIPIENT  # to oneself
    assert check(A, "video", str(SID), B.upper()) == protocol.ERR_RECIPIENT  # case-sensitive


@pytest.mark.parametrize("kind", ["audio", "video"])
def test_media_check_ok_both_directions(kind: str) -> None:
    hub = hub_with(call_sessions=[call(SID, A, B)])
    assert hub.media_check(A, kind, str(SID), B) is None
    assert hub.media_check(B, kind, str(SID), A) is None


def test_media_check_follows_the_stream() -> None:
    hub = hub_with(call_sessions=[call(SID, A, B, "Ringing")])
    assert hub.media_check(A, "audio", str(SID), B) == protocol.ERR_NOT_ACTIVE
    hub.publish(txn(update("call_sessions", call(SID, A, B), call(SID, A, B, "Ringing"))))
    assert hub.media_check(A, "audio", str(SID), B) is None
    hub.publish(txn(delete("call_sessions", call(SID, A, B))))
    assert hub.media_check(A, "audio", str(SID), B) == protocol.ERR_SESSION_NOT_FOUND


# -- wait_user ----------------------------------------------------------------------------------


async def test_wait_user_ends_on_an_accepted_row_from_publish_or_restart() -> None:
    hub = hub_with(users=[user(A, "old")])
    woken: list[str] = []

    async def wait(identity: str, nickname: str) -> None:
        await hub.wait_user(identity, lambda r: r["nickname"] == nickname)
        woken.append(identity)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait, A, "new")
        nursery.start_soon(wait, B, "bee")
        await trio.testing.wait_all_tasks_blocked()
        hub.publish(txn(update("users", user(A, "other"), user(A, "old"))))
        await trio.testing.wait_all_tasks_blocked()
        assert woken == []  # a row the waiter does not accept
        hub.publish(txn(update("users", user(A, "new"), user(A, "other"))))
        await trio.testing.wait_all_tasks_blocked()
        assert woken == [A]
        hub.restart(snapshot(users=[user(B, "bee")]))
    assert woken == [A, B]
    assert hub._users_shown.keys() == []
    await hub.wait_user(B, lambda r: True)  # already there: returns at once


# -- a slow client -----------------------------------------------------------------------------


async def test_slow_client_is_bounded_while_a_fast_one_gets_every_frame(
        autojump_clock: trio.testing.MockClock) -> None:
    limits = OutboxLimits(max_video=15, max_audio=40, max_state=200, max_bytes=2_000_000)
    hub = hub_with(call_sessions=[call(SID, A, B), call(SID2, C, D)])
    fast, slow = join(hub, B, limits), join(hub, D, limits)
    seconds, fps, afps, frame_size = 30, 15, 20, 20_000
    received: list[tuple[str, object]] = []
    peak = {"len": 0, "bytes": 0}
    drop_counts: list[int] = []

    def watch() -> None:
        peak["len"] = max(peak["len"], len(slow.outbox))
        peak["bytes"] = max(peak["bytes"], slow.outbox.queued_bytes)
        drop_counts.append(sum(drops(slow.outbox)))

    async def send_video() -> None:
        for seq in range(seconds * fps):
            hub.publish(txn(video(SID, A, B, seq, jpeg(seq, frame_size)),
                            video(SID2, C, D, seq, jpeg(seq, frame_size))))
            watch()
            await trio.sleep(1 / fps)

    async def send_audio() -> None:
        for seq in range(seconds * afps):
            hub.publish(txn(audio(SID, A, B, seq, b"\x01\x00" * 800),
                            audio(SID2, C, D, seq, b"\x01\x00" * 800)))
            watch()
            await trio.sleep(1 / afps)

    async def send_chat() -> None:
        for i in range(seconds):
            hub.publish(txn(insert("chat_messages", chat(i))))
            await trio.sleep(1)

    async def read_fast() -> None:
        while True:
            kind, m = fast_decode(await fast.outbox.get())
            received.append((kind, m))

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_fast)
        async with trio.open_nursery() as senders:
            senders.start_soon(send_video)
            senders.start_soon(send_audio)
            senders.start_soon(send_chat)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert trio.current_time() - start == pytest.approx(seconds, abs=0.2)

    def seqs(kind: str) -> list[object]:
        return [m for k, m in received if k == kind]

    assert seqs("video") == list(range(seconds * fps))
    assert seqs("audio") == list(range(seconds * afps))
    assert seqs("control") == [str(i) for i in range(seconds)]
    assert drops(fast.outbox) == (0, 0)

    assert peak["len"] <= limits.max_video + limits.max_audio + seconds
    assert peak["bytes"] <= limits.max_bytes
    assert slow.overflows == 0 and slow.outbox.close_request is None
    assert drop_counts == sorted(drop_counts)
    assert drop_counts[-1] > drop_counts[len(drop_counts) // 2] > 0
    assert drops(slow.outbox) == (seconds * fps - limits.max_video,
                                   seconds * afps - limits.max_audio)
    left = [fast_decode(d) for d in iter(slow.outbox.get_nowait, None)]
    assert [m for k, m in left if k == "video"] == list(range(seconds * fps - 15, seconds * fps))
    assert [m for k, m in left if k == "control"] == [str(i) for i in range(seconds)]


def fast_decode(data: bytes) -> tuple[str, object]:
    """(kind, seq) for a frame, ("control", chat id) for a chat insert."""
    if data[0] == 0:
        return "control", json.loads(data[1:])["row"]["id"]
    hlen = int.from_bytes(data[1:5], "big")
    return ("audio" if data[0] == 1 else "video"), json.loads(data[5 : 5 + hlen])["seq"]


# -- with run_replication and a scripted stream ---------------------------------------------------


async def test_stream_loss_and_reconnect_give_a_fresh_snapshot(
        autojump_clock: trio.testing.MockClock) -> None:
    source = ScriptedSource(snapshot(users=[user(A)], chat_messages=[chat(1)]))
    hub, status = Hub(), ReplicationStatus()
    async with trio.open_nursery() as nursery:
        await nursery.start(run_replication, source, hub, status)
        assert hub.streaming and hub.ready.is_set()
        sub = join(hub, A)
        source.push(txn(insert("chat_messages", chat(2))))
        await trio.testing.wait_all_tasks_blocked()
        assert chat_ids(sub.drain()) == ["2"]

        source.fail()
        await trio.testing.wait_all_tasks_blocked()
        assert hub.streaming is False
        assert status.stream is None and status.last_error == "connection lost"
        assert sub.drain() == []
        # While the stream was down, chat 3 was committed and A's nickname changed.
        source.snapshot = snapshot(users=[user(A, "back")],
                                   chat_messages=[chat(1), chat(2), chat(3)])
        first = await sub.outbox.get()  # the reconnect delivers a fresh snapshot
        assert hub.streaming is True and source.opened == 2 and status.reconnects == 1
        got = [fast_snapshot(first)] + [fast_snapshot(d)
                                        for d in iter(sub.outbox.get_nowait, None)]
        assert [t for t, _ in got] == list(STATE_TABLES)
        assert dict(got)["users"] == [enc("users", user(A, "back"))]
        assert [r["id"] for r in dict(got)["chat_messages"]] == ["3", "2", "1"]

        source.push(txn(insert("chat_messages", chat(4))))
        await trio.testing.wait_all_tasks_blocked()
        assert chat_ids(sub.drain()) == ["4"]
        nursery.cancel_scope.cancel()


def fast_snapshot(data: bytes) -> tuple[str, list[dict]]:
    m = json.loads(data[1:])
    assert m["type"] == "snapshot"
    return m["table"], m["rows"]
