-- pgcall schema 6: the frame tables are queues (a frame lives --retain seconds, 5 by default,
-- then the reaper deletes it), so they are vacuumed by the number of dead rows, not by a share
-- of the table: the space of deleted frames (and of their TOAST chunks) is reused at once
-- instead of the tables growing until a large vacuum runs (docs/deployment.md).
ALTER TABLE audio_frames SET (autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 2000, toast.autovacuum_vacuum_scale_factor = 0,
    toast.autovacuum_vacuum_threshold = 20000);
ALTER TABLE video_frames SET (autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 2000, toast.autovacuum_vacuum_scale_factor = 0,
    toast.autovacuum_vacuum_threshold = 20000);
ALTER TABLE room_audio_frames SET (autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 2000, toast.autovacuum_vacuum_scale_factor = 0,
    toast.autovacuum_vacuum_threshold = 20000);
ALTER TABLE room_video_frames SET (autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 2000, toast.autovacuum_vacuum_scale_factor = 0,
    toast.autovacuum_vacuum_threshold = 20000);
