-- The SQL behind the golden pgoutput captures (tests/golden/pgoutput_*.json).
--
-- scripts/capture_golden.py runs the "setup" section, creates the replication slots,
-- then runs each "step" section as one simple query and records the WAL position,
-- the next transaction id and the clock before and after it. Every step is one
-- published transaction, so it yields Begin ... Commit in the stream.
-- Sections start with a line "-- @setup" or "-- @step <name>".

-- @setup
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');

-- REPLICA IDENTITY DEFAULT (the primary key): old rows arrive as 'K' key tuples.
CREATE TABLE golden_items (
    id          bigint PRIMARY KEY,
    label       text,
    small       smallint,
    medium      integer,
    ratio       double precision,
    score       real,
    flag        boolean,
    happened_at timestamptz,
    ref         uuid,
    feeling     mood,          -- user-defined type: pgoutput sends a 'Y' message for it
    payload     bytea
);

-- REPLICA IDENTITY FULL: old rows arrive whole, as 'O' tuples.
CREATE TABLE golden_full (
    id   integer PRIMARY KEY,
    note text
);
ALTER TABLE golden_full REPLICA IDENTITY FULL;

CREATE PUBLICATION golden_pub FOR TABLE golden_items, golden_full;

SELECT pg_replication_origin_create('golden_origin');

-- @step insert_items
-- Row 1 has a value in every column; payload is 30000 incompressible bytes (the
-- MD5 digests of 'golden-1' .. 'golden-1875', concatenated), so it is stored
-- out of line in TOAST. Row 2 is NULL everywhere but the key.
BEGIN;
INSERT INTO golden_items VALUES (
    9007199254740993, 'héllo ✓', -7, 123456, 0.1, 0.55, true,
    '2026-11-25 18:00:47.400123+00', 'a0f375ab-fd13-48b1-8ba0-a68734dddfb8', 'happy',
    (SELECT decode(string_agg(md5('golden-' || i), '' ORDER BY i), 'hex')
       FROM generate_series(1, 1875) AS i)
);
INSERT INTO golden_items (id) VALUES (2);
COMMIT;

-- @step update_unchanged_toast
-- The key and the TOASTed payload do not change: no old tuple, payload sent as 'u'.
UPDATE golden_items SET label = 'changed' WHERE id = 9007199254740993;

-- @step update_key
-- The key changes under REPLICA IDENTITY DEFAULT: the old key is sent as 'K'.
UPDATE golden_items SET id = 3 WHERE id = 2;

-- @step delete_key
DELETE FROM golden_items WHERE id = 3;

-- @step full_identity
BEGIN;
INSERT INTO golden_full VALUES (1, 'first');
UPDATE golden_full SET note = 'second' WHERE id = 1;
DELETE FROM golden_full WHERE id = 1;
COMMIT;

-- @step message
SELECT pg_logical_emit_message(true, 'golden', 'hello, decoder');

-- @step origin
-- A transaction replayed from another node: pgoutput sends an Origin message, and
-- the commit time it reports is the origin's.
SELECT pg_replication_origin_session_setup('golden_origin');
BEGIN;
SELECT pg_replication_origin_xact_setup('0/ABCDEF', '2026-01-02 03:04:05.678901+00');
INSERT INTO golden_full VALUES (2, 'from elsewhere');
COMMIT;
SELECT pg_replication_origin_session_reset();

-- @step truncate
TRUNCATE golden_items, golden_full RESTART IDENTITY;
