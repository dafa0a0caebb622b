"""pgcall: video calls, chat and presence whose only message bus is PostgreSQL."""

__version__ = "0.1.0"
