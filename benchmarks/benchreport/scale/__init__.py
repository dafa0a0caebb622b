"""The scale-out benchmark behind ``benchmarks/scale.py``: rooms, recording on and off, workers,
and several relays on one database; one concern a module.

Pure (no I/O): ``plan`` (what a full and a quick run measure, the criteria), ``verdicts``
(whether a calls or rooms step held), ``figures`` (arithmetic on the recorded steps: CPU shares
and per frame, spreads, capacities, the order of the recording rounds, the egress comparison),
``promtext`` (Prometheus text to numbers), ``mdcommon`` and ``md_rooms``, ``md_recording``,
``md_workers``, ``md_relays`` (the markdown of each section), ``markdown`` (the sections in
order). With I/O: ``document`` (``benchmarks-scale.json``), ``measure`` (one measured
``pgcall bench`` step and waiting between steps), ``env`` (the run's database and starting
relays), ``metrics`` (a relay's ``/metrics``), and one module per section: ``rooms``,
``recording``, ``workers``, ``relays``; ``run`` (the sections of a run, in order). Does not own:
the command line (``benchmarks/scale.py``) or the rest of ``benchmarks.md`` (``render``).
"""
