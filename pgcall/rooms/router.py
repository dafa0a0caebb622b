"""The hub's part for rooms: room state to members only, and each frame fanned out to many.

Owns: an index of each room's members (in the order they joined) with its speaker tracker and
each member's main, kept in step with the stream; delivering room events only to the people
they concern (members; an invitation to its invitee); the room snapshot a member gets when it
joins (or reconnects, or the stream restarts); fanning each room frame out to the local members
the forwarding policy picks; telling local members which layers to send and who speaks; and
the authorization of a room frame (sender a member; video only in a video room).
Does not own: the mirror (the hub applies changes first), delivery (``Delivery``: the hub's
non-blocking outbox put), the policy (``forwarding``, ``speaker``).

Privacy: nothing of a room reaches a client that is not in it, except the invitation (with the
room's name) to the person invited.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import attrs

from ..relay.mirror import Mirror, Row
from ..wire import encode, rowjson
from ..wire import rooms as wire
from . import forwarding
from .speaker import SpeakerTracker

ROOM_TABLES = ("rooms", "room_members", "room_invites", "room_messages")
FRAME_TABLES = {"room_audio_frames": "audio", "room_video_frames": "video"}
SNAPSHOT_MESSAGES = 100  # room chat a joining member gets

# deliver(identity, kind, message, stamp): queue for a local client; False if not local.
Delivery = Callable[[str, str, bytes, "float | None"], bool]


@attrs.define
class RoomRuntime:
    members: list[str] = attrs.Factory(list)  # in the order they joined
    tracker: SpeakerTracker = attrs.Factory(SpeakerTracker)
    main_of: dict[str, str | None] = attrs.Factory(dict)
    told: dict[str, tuple[bool, bool]] = attrs.Factory(dict)  # layers each local member knows
    small: bool = True


@attrs.define
class RoomStats:
    frames_in: dict[str, int] = attrs.Factory(lambda: {"audio": 0, "video": 0})
    frames_out: dict[str, int] = attrs.Factory(lambda: {"audio": 0, "video": 0})
    frames_not_forwarded: int = 0  # by the policy (audio not audible, full layer not wanted)


class RoomRouter:
    def __init__(self, mirror: Mirror, deliver: Delivery, is_local: Callable[[str], bool],
                 relay_of: Callable[[str], int | None] = lambda identity: None) -> None:
        self.mirror = mirror
        self._relay_of = relay_of
        self._deliver = deliver
        self._is_local = is_local
        self.rooms: dict[str, RoomRuntime] = {}
        self.member_room: dict[str, str] = {}  # identity -> the room it is in
        self.stats = RoomStats()
        self.now_us = 0  # commit time of the transaction being routed

    # -- state ---------------------------------------------------------------------------------

    def reload(self) -> None:
        """Rebuild every room's index from the mirror (after the stream (re)started)."""
        old, self.rooms, self.member_room = self.rooms, {}, {}
        for row in sorted(self.mirror.tables["room_members"].values(),
                          key=lambda r: r["joined_at"]):
            rt = self.rooms.setdefault(row["room_id"], RoomRuntime())
            previous = old.get(row["room_id"])
            if previous is not None:
                rt.tracker = previous.tracker
            rt.members.append(row["identity"])
            self.member_room[row["identity"]] = row["room_id"]
        for room_id in self.rooms:
            self._recompute(room_id, notify=False)

    def state_change(self, table: str, op: str, new: Row | None, old: Row | None) -> None:
        """A change of a room table, already applied to the mirror."""
        row = new if new is not None else old
        assert row is not None
        room_id = row["room_id"]
        if table == "room_members":
            self._member_change(room_id, op, new, old)
            return
        message = _event(table, op, new, old)
        if table == "rooms":
            if op == "delete":
                for ident in list(self.rooms.get(room_id, RoomRuntime()).members):
                    self._send(ident, message)
            return
        if table == "room_invites":
            invite = dict(row)
            room = self.mirror.room(room_id)
            if room is not None:  # what the invitee needs to show the invitation
                invite["room_name"], invite["call_type"] = room["name"], room["call_type"]
            message = _event(table, op, invite if new is not None else None,
                             invite if new is None else old)
            targets = {row["invitee"], *self.rooms.get(room_id, RoomRuntime()).members}
            for ident in targets:
                self._send(ident, message)
            return
        for ident in self.rooms.get(room_id, RoomRuntime()).members:  # room_messages
            self._send(ident, message)

    def _member_change(self, room_id: str, op: str, new: Row | None, old: Row | None) -> None:
        rt = self.rooms.setdefault(room_id, RoomRuntime())
        row = new if new is not None else old
        assert row is not None
        ident = row["identity"]
        message = _event("room_members", op, new, old)
        if op == "insert":
            for other in rt.members:
                self._send(other, message)
            if ident not in rt.members:
                rt.members.append(ident)
            self.member_room[ident] = room_id
            self._recompute(room_id, notify=True, skip=ident)  # its snapshot tells it
            for snap in self.snapshot_messages(ident):
                self._send(ident, snap)
        elif op == "update":
            for other in rt.members:
                self._send(other, message)
            self._recompute(room_id, notify=True)
        else:
            for other in rt.members:
                self._send(other, message)
            if ident in rt.members:
                rt.members.remove(ident)
            if self.member_room.get(ident) == room_id:
                del self.member_room[ident]
            rt.tracker.remove(ident)
            rt.told.pop(ident, None)
            if not rt.members:
                del self.rooms[room_id]
            else:
                self._recompute(room_id, notify=True)

    def _recompute(self, room_id: str, *, notify: bool, skip: str | None = None) -> None:
        """Mains and layers after anything that changes them; tells local members (but
        ``skip``) whose layers changed."""
        rt = self.rooms[room_id]
        pins = {m: (self.mirror.member(room_id, m) or {}).get("pinned") for m in rt.members}
        rt.small = forwarding.is_small(rt.members)
        rt.main_of = forwarding.mains(rt.members, pins, rt.tracker.speaker, rt.tracker.previous)
        for ident in rt.members:
            if ident == skip or not self._is_local(ident):
                continue
            wanted = forwarding.layers(rt.members, rt.main_of, ident)
            if notify and rt.told.get(ident) != wanted:
                self._send(ident, _layers(room_id, wanted))
            rt.told[ident] = wanted

    def snapshot_messages(self, identity: str) -> list[bytes]:
        """What a member of a room is sent when it joins it (or connects while in it): the
        room, its members, its recent chat, who speaks, which layers to send; and for anyone,
        the invitations waiting for it (only when there are some: pg-relay's own app never
        sees a room table)."""
        out = []
        invites = [self._invite_row(r) for r in self.mirror.tables["room_invites"].values()
                   if r["invitee"] == identity]
        if invites:
            out.append(encode.snapshot("room_invites", invites))
        room_id = self.room_of(identity)
        if room_id is None:
            return out
        rt = self.rooms[room_id]
        room = self.mirror.room(room_id)
        members = [self.mirror.member(room_id, m) for m in rt.members]
        chat = [r for r in self.mirror.rows("room_messages")
                if r["room_id"] == room_id][:SNAPSHOT_MESSAGES]
        wanted = rt.told[identity] = forwarding.layers(rt.members, rt.main_of, identity)
        out += [encode.snapshot("rooms", [room] if room else []),
                encode.snapshot("room_members", [m for m in members if m]),
                encode.snapshot("room_messages", chat),
                _speaker(room_id, rt.tracker.speaker),
                _layers(room_id, wanted)]
        return out

    def _invite_row(self, row: Row) -> Row:
        room = self.mirror.room(row["room_id"]) or {}
        return {**row, "room_name": room.get("name"), "call_type": room.get("call_type")}

    def room_of(self, identity: str) -> str | None:
        return self.member_room.get(identity)

    # -- media ---------------------------------------------------------------------------------

    def relays_for(self, room_id: str, sender: str, kind: str) -> list[int] | None:
        """The pgcalls a room frame must reach: those serving the other members; for audio
        also the sender's (every relay with a member tracks the speaker from the audio).
        None (every relay) when one of them is not known."""
        rt = self.rooms.get(room_id)
        if rt is None:
            return None
        out: set[int] = set()
        for member in rt.members:
            if member == sender and kind != "audio":
                continue
            relay = self._relay_of(member)
            if relay is None:
                return None
            out.add(relay)
        return sorted(out)  # empty: nobody else (a room of one): no relay

    def media_check(self, sender: str, kind: str, room_id: str) -> str | None:
        """None if ``sender`` may send a ``kind`` frame to ``room_id``, else the error."""
        room = self.mirror.room(room_id)
        if room is None:
            return wire.ERR_ROOM_NOT_FOUND
        if self.mirror.member(room_id, sender) is None:
            return wire.ERR_NOT_MEMBER
        if kind == "video" and room.get("call_type") != "Video":
            return wire.ERR_NOT_VIDEO_ROOM
        return None

    def frame(self, kind: str, row: dict[str, Any], stamp: float | None = None) -> None:
        """One room frame from the stream, to the local members the policy picks."""
        room_id, sender = str(row["room_id"]), row["from_id"]
        self.stats.frames_in[kind] += 1
        rt = self.rooms.get(room_id)
        if rt is None or sender not in rt.members:
            return  # the sender left meanwhile (or a stray row written by another process)
        if kind == "audio":
            if rt.tracker.frame(sender, float(row["rms"]), self.now_us):
                self._recompute(room_id, notify=True)
                for ident in rt.members:
                    self._send(ident, _speaker(room_id, rt.tracker.speaker))
            if sender not in rt.tracker.audible(self.now_us):
                self.stats.frames_not_forwarded += 1
                return
            targets: Iterable[str] = (m for m in rt.members if m != sender)
        else:
            layer = row.get("layer", "full")
            targets = [m for m in rt.members
                       if forwarding.forward_video(rt.small, rt.main_of, m, sender, layer)]
        message = None
        # Thumbnails are queued as their own kind: a slow receiver sheds them first.
        queued_as = "thumb" if kind == "video" and row.get("layer") == "thumb" else kind
        for ident in targets:
            if not self._is_local(ident):
                continue
            if message is None:
                message = _media(kind, room_id, row)
            if self._deliver(ident, queued_as, message, stamp):
                self.stats.frames_out[kind] += 1

    def _send(self, identity: str, message: bytes) -> None:
        self._deliver(identity, "state", message, None)


def _event(table: str, op: str, new: Row | None, old: Row | None) -> bytes:
    if op == "insert":
        assert new is not None
        return encode.insert_event(table, new)
    if op == "update":
        assert new is not None
        return encode.update_event(table, new, old or {})
    return encode.delete_event(table, old or {})


def _layers(room_id: str, wanted: tuple[bool, bool]) -> bytes:
    return encode.encode_control({"type": "room_layers", "room_id": room_id,
                                  "full": wanted[0], "thumb": wanted[1]})


def _speaker(room_id: str, speaker: str | None) -> bytes:
    return encode.encode_control({"type": "room_speaker", "room_id": room_id,
                                  "speaker": speaker})


def _media(kind: str, room_id: str, row: dict[str, Any]) -> bytes:
    header = encode.room_media_header(kind, room_id, row["from_id"], row["seq"], row)
    if kind == "audio":
        header["rms"] = rowjson.float4_text(header["rms"])
    payload = row["pcm16le" if kind == "audio" else "jpeg"]
    return encode.encode_media(kind, header, payload)
