-- pgcall schema 1: pg-relay's tables (variant V, with variant R's extras) and pgcall's own.
-- Written with IF NOT EXISTS so that it also adopts a database set up by pg-relay's schema.sql.

CREATE TABLE IF NOT EXISTS users (
    identity     TEXT PRIMARY KEY,
    nickname     TEXT NOT NULL DEFAULT '',
    connected_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
ALTER TABLE users ADD COLUMN IF NOT EXISTS is_ai BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE IF NOT EXISTS chat_messages (
    id      BIGSERIAL PRIMARY KEY,
    sender  TEXT NOT NULL,
    sent_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    text    TEXT NOT NULL CHECK (char_length(text) <= 500)
);

CREATE TABLE IF NOT EXISTS call_sessions (
    session_id  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    call_type   TEXT NOT NULL DEFAULT 'Voice' CHECK (call_type IN ('Voice', 'Video')),
    state       TEXT NOT NULL CHECK (state IN ('Ringing', 'Active')),
    caller      TEXT NOT NULL,
    callee      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    answered_at TIMESTAMPTZ NULL
);

-- pgcall's defaults follow the published demo: 640x360, JPEG 0.65, 15 fps, 16 kHz, 50 ms.
CREATE TABLE IF NOT EXISTS media_settings (
    id                          INT PRIMARY KEY CHECK (id = 1),
    audio_target_sample_rate    INT      NOT NULL DEFAULT 16000,
    audio_frame_ms              SMALLINT NOT NULL DEFAULT 50,
    audio_max_frame_bytes       INT      NOT NULL DEFAULT 64000,
    audio_talking_rms_threshold REAL     NOT NULL DEFAULT 0.02,
    video_width                 SMALLINT NOT NULL DEFAULT 640,
    video_height                SMALLINT NOT NULL DEFAULT 360,
    video_fps                   SMALLINT NOT NULL DEFAULT 15,
    video_jpeg_quality          REAL     NOT NULL DEFAULT 0.65,
    video_max_frame_bytes       INT      NOT NULL DEFAULT 512000
);
INSERT INTO media_settings (id) VALUES (1) ON CONFLICT (id) DO NOTHING;

-- Frame tables stay WAL-logged: unlogged tables are not decoded. The payload column is
-- STORAGE EXTERNAL because JPEG and PCM do not compress: pglz would only burn CPU trying.
CREATE TABLE IF NOT EXISTS audio_frames (
    id          BIGSERIAL PRIMARY KEY,
    session_id  UUID NOT NULL,
    from_id     TEXT NOT NULL,
    to_id       TEXT NOT NULL,
    seq         INT NOT NULL,
    sample_rate INT NOT NULL,
    channels    SMALLINT NOT NULL,
    rms         REAL NOT NULL,
    pcm16le     BYTEA NOT NULL,
    inserted_at TIMESTAMPTZ NOT NULL DEFAULT now()
) WITH (autovacuum_vacuum_scale_factor = 0.01);
CREATE INDEX IF NOT EXISTS audio_frames_time_idx ON audio_frames (inserted_at);
ALTER TABLE audio_frames ALTER COLUMN pcm16le SET STORAGE EXTERNAL;

CREATE TABLE IF NOT EXISTS video_frames (
    id          BIGSERIAL PRIMARY KEY,
    session_id  UUID NOT NULL,
    from_id     TEXT NOT NULL,
    to_id       TEXT NOT NULL,
    seq         INT NOT NULL,
    width       SMALLINT NOT NULL,
    height      SMALLINT NOT NULL,
    jpeg        BYTEA NOT NULL,
    inserted_at TIMESTAMPTZ NOT NULL DEFAULT now()
) WITH (autovacuum_vacuum_scale_factor = 0.01);
CREATE INDEX IF NOT EXISTS video_frames_time_idx ON video_frames (inserted_at);
ALTER TABLE video_frames ALTER COLUMN jpeg SET STORAGE EXTERNAL;

-- Variant R's transcripts (written by its AI worker; pgcall only relays them).
CREATE TABLE IF NOT EXISTS ai_transcripts (
    id         BIGSERIAL PRIMARY KEY,
    session_id UUID NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('human', 'assistant')),
    text       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ai_transcripts_session_idx ON ai_transcripts (session_id, created_at);

-- Update and delete events carry the whole old row (protocol.md 4.5: pg-relay sent "old":{}).
ALTER TABLE users REPLICA IDENTITY FULL;
ALTER TABLE chat_messages REPLICA IDENTITY FULL;
ALTER TABLE call_sessions REPLICA IDENTITY FULL;
ALTER TABLE media_settings REPLICA IDENTITY FULL;
ALTER TABLE ai_transcripts REPLICA IDENTITY FULL;

-- pgcall's own state, never published. Tokens are stored hashed (SHA-256), so a database
-- dump does not hand out identities, and an identity survives a pgcall restart.
CREATE TABLE pgcall_tokens (
    token_hash BYTEA PRIMARY KEY,
    identity   TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Which running pgcall owns which connected user. A live instance holds a session advisory
-- lock on its id; rows of instances whose lock is free were left by a crash.
CREATE TABLE pgcall_instances (
    instance_id BIGINT PRIMARY KEY,
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    host        TEXT NOT NULL DEFAULT ''
);
CREATE TABLE pgcall_presence (
    identity    TEXT PRIMARY KEY,
    instance_id BIGINT NOT NULL
);

-- State tables travel with inserts, updates and deletes; frame tables with inserts only, so the
-- reaper's deletes never cross the stream.
CREATE PUBLICATION pgcall_state FOR TABLE users, chat_messages, call_sessions, media_settings,
    ai_transcripts WITH (publish = 'insert, update, delete');
CREATE PUBLICATION pgcall_frames FOR TABLE audio_frames, video_frames WITH (publish = 'insert');
