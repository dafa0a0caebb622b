"""PostgreSQL adapters (embedded server, connections, replication) and pure decoders."""
