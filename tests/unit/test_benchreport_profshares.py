"""Charging a profile's samples to the parts of a frame's path (benchmarks/cpu_profile.py)."""

from __future__ import annotations

from benchreport.profshares import OTHER, SCHEDULER, parse_raw, part_of, shares, top_self

ROOT = "main (pgcall/cli.py:258);run (trio/_core/_run.py:2532);unrolled_run (trio/_core/_run.py:1)"
RAW = "\n".join([
    # a socket write under the WebSocket layer, under the session's sender: the WebSocket's
    f"{ROOT};Session.run_sender (pgcall/relay/session.py:223);ServerWebSocket.send "
    "(pgcall/web/websocket.py:298);wrapper (trio/_socket.py:9) 6",
    # libpq under the frame writer: the INSERT's
    f"{ROOT};FrameWriter._write (pgcall/db/framewriter.py:168);PgConnection.flush "
    "(pgcall/pg/conn.py:157) 3",
    # the older layout: hypercorn's WebSocket, a flat package's store
    f"{ROOT};TCPServer._read_data (hypercorn/trio/tcp_server.py:1) 2",
    f"{ROOT};store_frame (pgcall/store.py:40);PgConnection.execute (pgcall/pg/conn.py:1) 1",
    # only trio: the scheduler
    f"{ROOT};EpollIOManager._epoll_wait (trio/_core/_io_epoll.py:1) 4",
    "<module> (<frozen runpy>:1) 1",
    "not a line",
])


def test_each_sample_goes_to_the_part_nearest_its_leaf() -> None:
    samples = parse_raw(RAW)
    assert [n for _, n in samples] == [6, 3, 2, 1, 4, 1]
    assert [part_of(s) for s, _ in samples] == [
        "WebSocket: frames in and out, sockets", "frame INSERT (frame writer, pool, libpq)",
        "WebSocket: frames in and out, sockets", "frame INSERT (frame writer, pool, libpq)",
        SCHEDULER, OTHER]


def test_shares_add_up_and_keep_the_parts_order() -> None:
    got = shares(parse_raw(RAW))
    assert got["WebSocket: frames in and out, sockets"] == round(100 * 8 / 17, 1)
    assert got["frame INSERT (frame writer, pool, libpq)"] == round(100 * 4 / 17, 1)
    assert got["hub: routing, fan-out, outboxes"] == 0.0
    assert list(got)[-2:] == [SCHEDULER, OTHER]
    assert abs(sum(got.values()) - 100.0) < 0.5


def test_own_time_is_the_leaf() -> None:
    assert top_self(parse_raw(RAW), 2) == [("wrapper (_socket.py)", round(100 * 6 / 17, 1)),
                                           ("EpollIOManager._epoll_wait (_io_epoll.py)",
                                            round(100 * 4 / 17, 1))]
