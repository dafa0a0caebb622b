"""A member's room request, carried out: which ``RoomStore`` call each room control type makes.

Owns: the dispatch from a validated room request (``wire.rooms``) to its SQL, and what the ack
carries (``room_id`` and, for a private room, its ``key``). Does not own: rate limits, replies
or errors of the database (``relay.session``).
"""

from __future__ import annotations

from typing import Any

from ..db.rooms import RoomStore
from ..wire.fields import Control

Outcome = tuple[dict[str, Any], str | None]  # (extra ack fields, error text or None)


async def carry_out(store: RoomStore, me: str, msg: Control) -> Outcome:
    f, t = msg.fields, msg.type
    if t == "create_room":
        ack, err = await store.create(me, f["name"], f["call_type"], f["private"])
        return ack or {}, err
    if t == "join_room":
        ack, err = await store.join(me, f["room_id"], f["key"])
        return ack or {}, err
    room = {"room_id": f["room_id"]}
    if t == "leave_room":
        return room, await store.leave(me, f["room_id"])
    if t == "invite_to_room":
        return room, await store.invite(me, f["room_id"], f["target"])
    if t == "decline_room_invite":
        return room, await store.decline_invite(me, f["room_id"])
    if t == "remove_from_room":
        return room, await store.remove(me, f["room_id"], f["target"])
    if t == "set_room_state":
        return room, await store.set_state(me, f["room_id"], f["state"])
    if t == "pin":
        return room, await store.pin(me, f["room_id"], f["target"])
    assert t == "send_room_message", t
    return room, await store.send_message(me, f["room_id"], f["text"])
