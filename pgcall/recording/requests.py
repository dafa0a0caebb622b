"""A participant's recording request, carried out (docs/recording.md).

Owns: the dispatch from a validated recording request (``wire.recording``) to its SQL, what
each ack carries, and sending the frames a ``get_recording`` asks for (each as a media
message, before the ack that closes the chunk). Does not own: rate limits, replies or errors
of the database (``relay.session``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..db.recordings import RecordingStore
from ..wire import recording as w
from ..wire import rowjson
from ..wire.fields import Control
from .frames import replay_message

Outcome = tuple[dict[str, Any], str | None]  # (extra ack fields, error text or None)


def _listed(rec: dict[str, Any]) -> dict[str, Any]:
    """A recording as clients see it: times as ISO strings, its length in ms if it ended."""
    started, stopped = rec["started_at"], rec["stopped_at"]
    out = dict(rec)
    out["started_at"] = rowjson.encode_value(rowjson.TIMESTAMPTZ_OID, started)
    out["stopped_at"] = rowjson.encode_value(rowjson.TIMESTAMPTZ_OID, stopped)
    out["duration_ms"] = (None if stopped is None
                          else int((stopped - started).total_seconds() * 1000))
    return out


async def carry_out(store: RecordingStore, me: str, msg: Control,
                    send: Callable[[bytes], None]) -> Outcome:
    f, t = msg.fields, msg.type
    if t == "hello":
        await store.hello(me, f["features"])
        return {"features": f["features"]}, None
    if t == "start_recording":
        ack, err = await store.start(me, f["session_id"], f["room_id"])
        return ack or {}, err
    if t == "stop_recording":
        return {}, await store.stop(me, f["session_id"], f["room_id"])
    if t == "list_recordings":
        return {"recordings": [_listed(r) for r in await store.listing(me)]}, None
    if t == "delete_recording":
        return {"recording_id": f["recording_id"]}, await store.delete(me, f["recording_id"])
    assert t == "get_recording", t
    rec, frames = await store.frames(me, f["recording_id"], f["from_ms"], f["to_ms"])
    if rec is None:
        return {}, w.ERR_NOT_FOUND
    for frame in frames:
        send(replay_message(f["recording_id"], frame))
    listed = _listed(rec)
    return {"recording_id": f["recording_id"], "from_ms": f["from_ms"], "to_ms": f["to_ms"],
            "frames": len(frames), "duration_ms": listed["duration_ms"],
            "kind": listed["kind"], "participants": listed["participants"]}, None
