-- pgcall schema 6: the frame tables are queues (a frame lives --retain seconds, 5 by default,
-- then the reaper deletes it), so they are vacuumed by the number of dead rows, not by a share
-- of the table: the space of deleted frames (and of their TOAST chunks) is reused at once
-- instead of the tables growing until a large vacuum runs (docs/deployment.md).
DO $$
DECLARE
    frames text;
BEGIN
    FOREACH frames IN ARRAY ARRAY['audio_frames', 'video_frames', 'room_audio_frames',
                                  'room_video_frames'] LOOP
        EXECUTE format('ALTER TABLE %I SET (autovacuum_vacuum_scale_factor = 0, '
                       'autovacuum_vacuum_threshold = 2000, '
                       'toast.autovacuum_vacuum_scale_factor = 0, '
                       'toast.autovacuum_vacuum_threshold = 20000)', frames);
    END LOOP;
END
$$;
