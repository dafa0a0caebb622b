"""The measurement and the write-up behind ``benchmarks/report.py``, one concern a module.

``settings`` (criteria, load, plans), ``cluster`` (PostgreSQL and pgcall as processes),
``sampling`` (CPU, RSS and WAL while a measurement runs), ``floor`` (the bare replication
consumer and its writer), ``step`` (one ``pgcall bench`` step and its criterion), ``run`` (the
order of a whole run and its JSON document), ``figures`` (reading the document back),
``targets`` (the verdicts), ``markdown`` and ``findings`` (the sections), ``render`` (the .md and
.png) and ``chart`` (the .png). Does not own: the command line (``benchmarks/report.py``).
"""
