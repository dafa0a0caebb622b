-- pgcall schema 2: rooms of up to --max-room-size people (docs/protocol-rooms.md).
-- Room state travels by logical replication like every other state table, so any number of
-- pgcall instances on one database agree on it; room media is one row per frame, whatever the
-- number of receivers (no per-recipient copy), fanned out by each relay from the stream.

CREATE TABLE rooms (
    room_id     UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name        TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 64),
    creator     TEXT NOT NULL,
    call_type   TEXT NOT NULL CHECK (call_type IN ('Voice', 'Video')),
    max_members SMALLINT NOT NULL CHECK (max_members BETWEEN 2 AND 100),
    private     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The key of a private room (carried by its join link). Never published: only members are
-- told it, by pgcall, and a joiner must present it or hold an invitation.
CREATE TABLE pgcall_room_keys (
    room_id UUID PRIMARY KEY REFERENCES rooms ON DELETE CASCADE,
    key     TEXT NOT NULL
);

-- Members and what they show: microphone, camera, screen share, raised hand, and whom they
-- pinned (a pinned member is sent at full size and rate, like the active speaker).
CREATE TABLE room_members (
    room_id   UUID NOT NULL REFERENCES rooms ON DELETE CASCADE,
    identity  TEXT NOT NULL,
    joined_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    mic       BOOLEAN NOT NULL DEFAULT TRUE,
    camera    BOOLEAN NOT NULL DEFAULT TRUE,
    screen    BOOLEAN NOT NULL DEFAULT FALSE,
    hand      BOOLEAN NOT NULL DEFAULT FALSE,
    pinned    TEXT NULL,
    PRIMARY KEY (room_id, identity)
);
-- A person is in at most one room (and, checked by pgcall, not in a call at the same time).
CREATE UNIQUE INDEX room_members_one_room ON room_members (identity);

CREATE TABLE room_invites (
    room_id    UUID NOT NULL REFERENCES rooms ON DELETE CASCADE,
    invitee    TEXT NOT NULL,
    inviter    TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, invitee)
);

CREATE TABLE room_messages (
    id      BIGSERIAL PRIMARY KEY,
    room_id UUID NOT NULL REFERENCES rooms ON DELETE CASCADE,
    sender  TEXT NOT NULL,
    sent_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    text    TEXT NOT NULL CHECK (char_length(text) <= 500)
);
CREATE INDEX room_messages_room_idx ON room_messages (room_id, id);

-- Room media: one row per frame. ``layer`` is 'full' (the camera or screen at full size and
-- rate) or 'thumb' (a small, slower copy every member also sends in a large room).
CREATE TABLE room_video_frames (
    id          BIGSERIAL PRIMARY KEY,
    room_id     UUID NOT NULL,
    from_id     TEXT NOT NULL,
    seq         INT NOT NULL,
    layer       TEXT NOT NULL,
    width       SMALLINT NOT NULL,
    height      SMALLINT NOT NULL,
    jpeg        BYTEA NOT NULL,
    inserted_at TIMESTAMPTZ NOT NULL DEFAULT now()
) WITH (autovacuum_vacuum_scale_factor = 0.01);
CREATE INDEX room_video_frames_time_idx ON room_video_frames (inserted_at);
ALTER TABLE room_video_frames ALTER COLUMN jpeg SET STORAGE EXTERNAL;

CREATE TABLE room_audio_frames (
    id          BIGSERIAL PRIMARY KEY,
    room_id     UUID NOT NULL,
    from_id     TEXT NOT NULL,
    seq         INT NOT NULL,
    sample_rate INT NOT NULL,
    channels    SMALLINT NOT NULL,
    rms         REAL NOT NULL,
    pcm16le     BYTEA NOT NULL,
    inserted_at TIMESTAMPTZ NOT NULL DEFAULT now()
) WITH (autovacuum_vacuum_scale_factor = 0.01);
CREATE INDEX room_audio_frames_time_idx ON room_audio_frames (inserted_at);
ALTER TABLE room_audio_frames ALTER COLUMN pcm16le SET STORAGE EXTERNAL;

ALTER TABLE rooms REPLICA IDENTITY FULL;
ALTER TABLE room_members REPLICA IDENTITY FULL;
ALTER TABLE room_invites REPLICA IDENTITY FULL;
ALTER TABLE room_messages REPLICA IDENTITY FULL;

ALTER PUBLICATION pgcall_state ADD TABLE rooms, room_members, room_invites, room_messages;
ALTER PUBLICATION pgcall_frames ADD TABLE room_video_frames, room_audio_frames;
