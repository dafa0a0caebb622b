"""The measurement and the write-up behind ``benchmarks/report.py``, one concern a module.

``settings`` (criteria, load, plans), ``cluster`` (PostgreSQL and pgcall as processes),
``peer`` (a peer started from its source directory), ``servers`` (the servers a sweep measures
and their database clusters), ``proc`` (CPU accounting from ``/proc`` text), ``sampling`` (CPU,
RSS and WAL while a measurement runs), ``floor`` (the bare replication consumer and its
writer), ``step`` (one ``pgcall bench`` step and its criterion), ``sweep`` (which steps, in
which order), ``run`` (the order of a whole run and its JSON document), ``figures`` (reading
the document back), ``targets`` (the verdicts), ``markdown``, ``findings`` and ``sidebyside``
(the sections), ``render`` (the .md and .png) and ``chart`` (the .png); ``roomwal`` (WAL per
room frame at one room size, for ``benchmarks/rooms_wal.py`` and the scale run). Does not own:
the command lines (``benchmarks/report.py``, ``benchmarks/peer.py``, ``benchmarks/rooms_wal.py``).
"""
