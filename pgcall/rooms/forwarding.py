"""What each member of a room is sent, and what each member must send. Pure.

Owns the forwarding policy of docs/protocol-rooms.md ("Speaker-aware forwarding"):

* A small room (at most ``SMALL_ROOM`` members) needs no thinning: everyone sends the full
  layer and everyone gets everyone's full layer.
* In a larger room every member sends a small ``thumb`` layer (every second camera frame, a
  fraction of the bytes) and everyone gets everyone else's thumbnails. Each receiver has one
  *main* member: the one it pinned (while in the room), else the dominant speaker, else (for
  the speaker itself) the previous speaker, else the member who joined first. A member sends
  its ``full`` layer only while it is somebody's main, and only those whose main it is get it.
  The database and the relays thus carry one full stream per distinct main (usually one or
  two), not one per member: this is what lets 16 people fit (simulcast, as SFUs do it, with
  the layer choice made from the stream every relay reads).
* Audio: receivers get the audio of the ``audible`` members only (``speaker``).

Does not own: the speaker detection (``speaker``) or delivery (``router``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

SMALL_ROOM = 4


def is_small(members: Sequence[str]) -> bool:
    return len(members) <= SMALL_ROOM


def mains(members: Sequence[str], pins: Mapping[str, str | None], speaker: str | None,
          previous: str | None) -> dict[str, str | None]:
    """Each member's main member (``members`` in the order they joined)."""
    present = set(members)
    out: dict[str, str | None] = {}
    for receiver in members:
        pinned = pins.get(receiver)
        if pinned is not None and pinned in present and pinned != receiver:
            out[receiver] = pinned
            continue
        choice = None
        for candidate in (speaker, previous, *members):
            if candidate is not None and candidate != receiver and candidate in present:
                choice = candidate
                break
        out[receiver] = choice
    return out


def layers(members: Sequence[str], main_of: Mapping[str, str | None],
           sender: str) -> tuple[bool, bool]:
    """(send the full layer, send the thumb layer) for ``sender``."""
    if is_small(members):
        return True, False
    return sender in main_of.values(), True


def forward_video(small: bool, main_of: Mapping[str, str | None], receiver: str, sender: str,
                  layer: str) -> bool:
    """Whether a video frame of ``sender``'s ``layer`` goes to ``receiver``."""
    if receiver == sender:
        return False
    if small:
        return layer == "full"
    if layer == "thumb":
        return True
    return main_of.get(receiver) == sender
