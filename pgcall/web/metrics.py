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

from ..db.framewriter import FrameWriter
from ..pg.walproto import unix_time
from ..relay.hub import Hub
from ..relay.replication import ReplicationStatus
from .frontdoor import DoorStats

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05,
                   0.1, 0.25, 0.5, 1.0)


class _StateCollector(Collector):
    def __init__(self, hub: Hub, replication: ReplicationStatus,
                 reaped: dict[str, int], door: DoorStats,
                 frames: FrameWriter | None = None) -> None:
        self.hub, self.replication, self.reaped, self.door = hub, replication, reaped, door
        self.frames = frames

    def collect(self) -> Iterator[Metric]:
        hub, st = self.hub, self.hub.stats
        stats = hub.statistics()
        yield GaugeMetricFamily("pgcall_clients", "Connected WebSocket clients",
                                value=stats["clients"])
        yield GaugeMetricFamily("pgcall_active_calls", "Calls in state Active",
                                value=stats["active_calls"])
        rooms = hub.rooms.stats
        frames_in = CounterMetricFamily("pgcall_frames_in", "Media frames read from the "
                                        "replication stream", labels=["kind", "scope"])
        frames_out = CounterMetricFamily("pgcall_frames_out", "Media frames queued to a "
                                         "local recipient", labels=["kind", "scope"])
        for kind in ("audio", "video"):
            frames_in.add_metric([kind, "call"], st.frames_in[kind])
            frames_out.add_metric([kind, "call"], st.frames_out[kind])
            frames_in.add_metric([kind, "room"], rooms.frames_in[kind])
            frames_out.add_metric([kind, "room"], rooms.frames_out[kind])
        yield frames_in
        yield frames_out
        dropped = CounterMetricFamily(
            "pgcall_frames_dropped", "Media frames not delivered: slow_client_* (the "
            "receiver's queue was full), late_* (too old by their turn to be sent), "
            "recipient_offline, not_forwarded (a room's policy: audio of a member not among "
            "the loudest, or a full layer nobody watches), db_backlog_video (the database fell "
            "behind the senders), overload_video (shed at the door while the database path "
            "lags)", labels=["reason"])
        for reason in ("slow_client_video", "slow_client_audio", "late_video", "late_audio",
                       "overload_video"):
            dropped.add_metric([reason], st.frames_dropped.get(reason, 0))
        dropped.add_metric(["recipient_offline"], st.frames_unroutable)
        dropped.add_metric(["not_forwarded"], rooms.frames_not_forwarded)
        dropped.add_metric(["db_backlog_video"], self.frames.dropped if self.frames else 0)
        yield dropped
        yield GaugeMetricFamily("pgcall_video_shed_ratio", "Share of the video frames senders "
                                "hand in that is shed at the door now (graceful overload)",
                                value=hub.shedder.ratio)
        if self.frames is not None:
            written = self.frames.statistics()
            yield CounterMetricFamily("pgcall_frames_written", "Media frames written to "
                                      "PostgreSQL", value=written["written"])
            yield CounterMetricFamily("pgcall_frame_batches", "Transactions that wrote "
                                      "frames (a batch carries all the frames that waited)",
                                      value=written["batches"])
        yield CounterMetricFamily("pgcall_replication_reconnects",
                                  "Replication stream reconnects",
                                  value=self.replication.reconnects)
        yield GaugeMetricFamily("pgcall_replication_streaming", "1 while replication streams",
                                value=1 if self.replication.streaming else 0)
        yield CounterMetricFamily("pgcall_replication_bytes", "Bytes the walsender sent this "
                                  "relay (CopyData): its share of the database's egress",
                                  value=self.replication.bytes_received)
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
                 door: DoorStats | None = None, frames: FrameWriter | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.reaped: dict[str, int] = {}
        self.registry.register(_StateCollector(hub, replication, self.reaped,
                                               door or DoorStats(), frames))
        self.frame_latency = Histogram(
            "pgcall_frame_latency_seconds",
            "Time a media frame spends inside pgcall: WebSocket receive to WebSocket send",
            buckets=LATENCY_BUCKETS, registry=self.registry)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
