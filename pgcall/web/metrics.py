"""/metrics in the Prometheus text format (prometheus-client), every name starting ``pgcall_``.

Owns: the metric names and the registry of one pgcall (not the global one, so several servers
in one process, as in tests, do not collide). Values are read from the hub, the replication
status and the reaper's counters when scraped; only the latency histogram is observed live.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from ..pg.walproto import unix_time
from ..relay.hub import Hub
from ..relay.replication import ReplicationStatus
from .frontdoor import DoorStats

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05,
                   0.1, 0.25, 0.5, 1.0)


class _StateCollector(Collector):
    def __init__(self, hub: Hub, replication: ReplicationStatus,
                 reaped: dict[str, int], door: DoorStats) -> None:
        self.hub, self.replication, self.reaped, self.door = hub, replication, reaped, door

    def collect(self) -> Iterator[Metric]:
        hub, st = self.hub, self.hub.stats
        stats = hub.statistics()
        yield GaugeMetricFamily("pgcall_clients", "Connected WebSocket clients",
                                value=stats["clients"])
        yield GaugeMetricFamily("pgcall_active_calls", "Calls in state Active",
                                value=stats["active_calls"])
        frames_in = CounterMetricFamily("pgcall_frames_in", "Media frames read from the "
                                        "replication stream", labels=["kind"])
        frames_out = CounterMetricFamily("pgcall_frames_out", "Media frames queued to a "
                                         "local recipient", labels=["kind"])
        for kind in ("audio", "video"):
            frames_in.add_metric([kind], st.frames_in[kind])
            frames_out.add_metric([kind], st.frames_out[kind])
        yield frames_in
        yield frames_out
        dropped = CounterMetricFamily("pgcall_frames_dropped", "Media frames not delivered",
                                      labels=["reason"])
        dropped.add_metric(["slow_client_video"], st.frames_dropped["video"])
        dropped.add_metric(["slow_client_audio"], st.frames_dropped["audio"])
        dropped.add_metric(["recipient_offline"], st.frames_unroutable)
        yield dropped
        yield CounterMetricFamily("pgcall_replication_reconnects",
                                  "Replication stream reconnects",
                                  value=self.replication.reconnects)
        yield GaugeMetricFamily("pgcall_replication_streaming", "1 while replication streams",
                                value=1 if self.replication.streaming else 0)
        stream = self.replication.stream
        lag_bytes, lag_s = 0.0, 0.0
        if stream is not None:
            s = stream.statistics()
            lag_bytes = float(s.get("lag_bytes", 0))
            commit = s.get("last_commit_time")
            if commit:
                lag_s = max(0.0, time.time() - unix_time(commit))
        yield GaugeMetricFamily("pgcall_replication_lag_bytes",
                                "WAL the server has sent beyond what pgcall acknowledged",
                                value=lag_bytes)
        yield GaugeMetricFamily("pgcall_replication_lag_seconds",
                                "Age of the last transaction's commit when it was decoded",
                                value=lag_s)
        reaped = CounterMetricFamily("pgcall_reaper_deleted", "Frames deleted by the reaper",
                                     labels=["table"])
        for table, n in sorted(self.reaped.items()):
            reaped.add_metric([table], n)
        yield reaped
        door = self.door
        yield GaugeMetricFamily("pgcall_connections_open", "Open TCP connections (HTTP and "
                                "WebSocket)", value=door.open)
        yield CounterMetricFamily("pgcall_connections_accepted", "TCP connections accepted",
                                  value=door.accepted)
        yield CounterMetricFamily("pgcall_connections_refused", "Connections closed at once: "
                                  "over the connection limit", value=door.refused)
        failures = CounterMetricFamily(
            "pgcall_connection_failures", "Connections ended by an error, by cause (a client's "
            "protocol error, a timeout, 'internal' for pgcall's own)", labels=["cause"])
        for cause, n in sorted(door.failures.items()):
            failures.add_metric([cause], n)
        yield failures


class Metrics:
    def __init__(self, hub: Hub, replication: ReplicationStatus,
                 door: DoorStats | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.reaped: dict[str, int] = {}
        self.registry.register(_StateCollector(hub, replication, self.reaped,
                                               door or DoorStats()))
        self.frame_latency = Histogram(
            "pgcall_frame_latency_seconds",
            "Time a media frame spends inside pgcall: WebSocket receive to WebSocket send",
            buckets=LATENCY_BUCKETS, registry=self.registry)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
