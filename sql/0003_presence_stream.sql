-- pgcall schema 3: which pgcall serves each connected user travels on the stream, so that
-- every relay on the database knows (a connection of the same identity on another relay
-- replaces the older one, and frames can name the relays they are for). Not sent to clients.
ALTER TABLE pgcall_presence REPLICA IDENTITY FULL;
ALTER PUBLICATION pgcall_state ADD TABLE pgcall_presence;
