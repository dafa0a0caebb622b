"""Rooms: conferences of up to --max-room-size people on the same stream as calls. Who is
speaking (``speaker``), what each member is sent (``forwarding``), and the hub's part for rooms:
room state to members only and one frame fanned out to many (``router``)."""
