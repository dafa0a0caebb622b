-- pgcall schema 4: recordings (docs/recording.md). A recording is a row, published so that
-- every participant's relay shows the indicator the moment it starts; its frames stay in the
-- frame tables until the reaper moves them, once older than --retain, into recorded_frames,
-- which the live path never touches. Clients say what they can do (features) when they
-- connect; pgcall records only people whose client shows the recording indicator.

ALTER TABLE pgcall_presence ADD COLUMN features TEXT[] NOT NULL DEFAULT '{}';

CREATE TABLE recordings (
    recording_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),  -- 122 random bits: unguessable
    session_id   UUID NULL,  -- a call's, or
    room_id      UUID NULL,  -- a room's
    started_by   TEXT NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    stopped_at   TIMESTAMPTZ NULL,
    participants TEXT[] NOT NULL,  -- everyone recorded: who may list, replay, download it
    CHECK ((session_id IS NULL) <> (room_id IS NULL))
);
CREATE INDEX recordings_session_idx ON recordings (session_id) WHERE stopped_at IS NULL;
CREATE INDEX recordings_room_idx ON recordings (room_id) WHERE stopped_at IS NULL;
CREATE INDEX recordings_participants_idx ON recordings USING gin (participants);

CREATE TABLE recorded_frames (
    id           BIGSERIAL PRIMARY KEY,
    recording_id UUID NOT NULL REFERENCES recordings ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('audio', 'video')),
    from_id      TEXT NOT NULL,
    seq          INT NOT NULL,
    layer        TEXT NULL,  -- video: full or thumb
    width        SMALLINT NULL,
    height       SMALLINT NULL,
    sample_rate  INT NULL,  -- audio
    channels     SMALLINT NULL,
    rms          REAL NULL,
    payload      BYTEA NOT NULL,
    at           TIMESTAMPTZ NOT NULL  -- when the frame was written by the live path
);
CREATE INDEX recorded_frames_time_idx ON recorded_frames (recording_id, at);
ALTER TABLE recorded_frames ALTER COLUMN payload SET STORAGE EXTERNAL;

ALTER TABLE recordings REPLICA IDENTITY FULL;
ALTER PUBLICATION pgcall_state ADD TABLE recordings;
