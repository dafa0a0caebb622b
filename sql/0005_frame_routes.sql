-- pgcall schema 5: each frame names the relays it is for, so that a relay's stream carries
-- only the frames of its own clients (a publication per relay with a row filter, made by the
-- relay itself on PostgreSQL >= 15; docs/deployment.md). NULL means every relay: a frame
-- written by another process (pg-relay's AI worker, say) still reaches whoever serves its
-- recipient.
ALTER TABLE audio_frames ADD COLUMN IF NOT EXISTS to_relay BIGINT NULL;
ALTER TABLE video_frames ADD COLUMN IF NOT EXISTS to_relay BIGINT NULL;
ALTER TABLE room_audio_frames ADD COLUMN IF NOT EXISTS relays BIGINT[] NULL;
ALTER TABLE room_video_frames ADD COLUMN IF NOT EXISTS relays BIGINT[] NULL;

-- Which process a relay is (for an operator: `pgcall --workers` runs several on one host).
ALTER TABLE pgcall_instances ADD COLUMN IF NOT EXISTS pid INT NULL;
