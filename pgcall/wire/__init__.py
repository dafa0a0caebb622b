"""The pg-relay wire protocol as bytes, without I/O: parsing what clients send (``protocol``),
encoding what pgcall sends (``encode``) and row values as pg-relay's JSON (``rowjson``)."""
