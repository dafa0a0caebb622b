-- pgcall schema 7: the frame tables' vacuums are not throttled. Autovacuum's default cost limit
-- lets a vacuum read about 28 MB/s here, and the frames of 15 calls arrive at about 15 MB/s: a
-- TOAST vacuum of video_frames then took 5-12 s, during which nothing it was freeing could be
-- reused, so the table grew with every minute of load (588 MB after three 30 s runs of 15
-- calls on one database). Unthrottled, the same vacuum takes 0.2-0.6 s and the table stays at
-- the size of the frames the retention keeps (155 MB after the same runs). The tables are
-- small and hot, so an unthrottled pass is short; the rest of the database keeps the default.
ALTER TABLE audio_frames SET (autovacuum_vacuum_cost_delay = 0,
    toast.autovacuum_vacuum_cost_delay = 0);
ALTER TABLE video_frames SET (autovacuum_vacuum_cost_delay = 0,
    toast.autovacuum_vacuum_cost_delay = 0);
ALTER TABLE room_audio_frames SET (autovacuum_vacuum_cost_delay = 0,
    toast.autovacuum_vacuum_cost_delay = 0);
ALTER TABLE room_video_frames SET (autovacuum_vacuum_cost_delay = 0,
    toast.autovacuum_vacuum_cost_delay = 0);
