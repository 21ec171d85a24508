"""storage/: plumbing the queue and the delivery log share on each backend (NATS connection and
streams; SQLite connections, error translation and the group-commit writer)."""
