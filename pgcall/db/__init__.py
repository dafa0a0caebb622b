"""pgcall's own SQL on PostgreSQL: what a session writes (``store``), frames as logical
messages (``mediamsg``), this instance's liveness and the clean-up after dead ones
(``instances``), and the reaper of old frames (``reaper``)."""
