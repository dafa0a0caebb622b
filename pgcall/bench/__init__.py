"""``pgcall bench``: a load generator that speaks the pg-relay protocol.

It opens pairs of clients, sets up a video call between each pair, streams video (and audio)
both ways on a fixed schedule, and reports end-to-end latency, delivered frame rates, losses,
errors and its own CPU use. ``cli`` is the entry point (``add_bench_options``, ``run_bench``).
"""
