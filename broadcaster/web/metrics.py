"""`GET /metrics`: the service in Prometheus' text format (prometheus-client).

Counted as it happens in this process: updates accepted (Dispatcher.subscribe_accepted, which every intake
goes through), deliveries by channel and final outcome and retries (Dispatcher.subscribe's lane events),
and each delivery's latency from acceptance to delivered. Read from the journal at scrape time: each lane's
queue depth and oldest waiting age, so work journaled by the CLI or by another instance shows too.

Labels are the channel and the outcome only, a few dozen series at most: never a target (a webhook URL
carries its secret, and subscribers' targets are unbounded), never an incident or update id."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Final

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.aiohttp import make_aiohttp_handler

from broadcaster.lanes import EventKind, LaneEvent
from broadcaster.preflight import Preflight
from broadcaster.store import Accepted, Standing
from broadcaster.web.backlog import Backlog
from broadcaster.web.keys import DISPATCHER, JOURNAL_FIGURES, RUNTIME
from broadcaster.web.preflight_watch import PREFLIGHT

FINAL_OUTCOMES: Final = frozenset({EventKind.DELIVERED, EventKind.FAILED, EventKind.EXPIRED, EventKind.SUPERSEDED})
LATENCY_BUCKETS: Final = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
"""Seconds from acceptance to delivered: a webhook takes a fraction of a second, a large email fan-out
minutes, and a delivery held by retries up to its time-to-live (an hour by default)."""


class ServiceMetrics:
    """The service's metrics, in a registry of its own rather than prometheus-client's global one, so
    that two applications in one process (the tests run many) each count their own."""

    def __init__(self, *, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._channels: set[str] = set()
        self.registry = CollectorRegistry()
        self.updates_accepted = Counter(
            "broadcaster_updates_accepted",
            "Updates journaled by this service's intake (API, form, chatops); a replayed Idempotency-Key "
            "is not counted again.",
            registry=self.registry,
        )
        self.deliveries = Counter(
            "broadcaster_deliveries",
            "Deliveries that reached a final outcome in this process (delivered, failed, expired, superseded).",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.retries = Counter(
            "broadcaster_delivery_retries",
            "Attempts that failed transiently and were scheduled again.",
            ["channel"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "broadcaster_lane_queue_depth",
            "Open deliveries (pending or in flight) in the journal.",
            ["channel"],
            registry=self.registry,
        )
        self.oldest_waiting = Gauge(
            "broadcaster_lane_oldest_waiting_seconds",
            "Age of the oldest open delivery in the journal (0 when nothing waits).",
            ["channel"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "broadcaster_delivery_latency_seconds",
            "From an update's acceptance to its delivery, per channel.",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.preflight_failed = Gauge(
            "broadcaster_preflight_failed_targets",
            'Targets that failed the service\'s latest preflight, per channel (and "journal").',
            ["channel"],
            registry=self.registry,
        )
        self.preflight_checked = Gauge(
            "broadcaster_preflight_checked_timestamp_seconds",
            "When the latest preflight started (0 before the first has finished).",
            registry=self.registry,
        )
        self.store_degraded = Gauge(
            "broadcaster_store_degraded",
            "1 while this instance cannot reach the shared journal and runs on its local replica, else 0.",
            registry=self.registry,
        )
        self.store_accepted = Gauge(
            "broadcaster_store_local_updates",
            "Updates accepted into the local replica while the shared journal was out of reach, not given back yet.",
            registry=self.registry,
        )
        self.store_waiting = Gauge(
            "broadcaster_store_held_records",
            "Records (outcomes, pauses, suppressions) held in the local replica for the shared journal.",
            registry=self.registry,
        )
        # prometheus-client's own handler: it answers in the text or the OpenMetrics format, as asked.
        self.exposition = make_aiohttp_handler(self.registry)

    def lane_event(self, event: LaneEvent) -> None:
        """A Dispatcher.subscribe observer."""
        channel = event.delivery.channel
        self._know([channel])
        if event.kind is EventKind.DELIVERED:
            # Events are reported as soon as the outcome is journaled, so now is when it was delivered.
            self.latency.labels(channel).observe(max(0.0, self._clock() - event.delivery.created_at))
        if event.kind in FINAL_OUTCOMES:
            self.deliveries.labels(channel, event.kind.value).inc()
        elif event.kind is EventKind.RETRYING:
            self.retries.labels(channel).inc()

    def accepted(self, accepted: Accepted) -> None:
        """A Dispatcher.subscribe_accepted observer."""
        if accepted.duplicate:
            return
        self.updates_accepted.inc()
        # Superseded in the accepting transaction, before any lane saw them: no lane event reports these.
        for delivery in accepted.superseded:
            self._know([delivery.channel])
            self.deliveries.labels(delivery.channel, EventKind.SUPERSEDED.value).inc()

    def set_backlog(self, backlog: Mapping[str, Backlog]) -> None:
        self._know(backlog)
        for channel in self._channels:
            waiting = backlog.get(channel, Backlog(queue_depth=0, oldest_waiting_s=0.0))
            self.queue_depth.labels(channel).set(waiting.queue_depth)
            self.oldest_waiting.labels(channel).set(waiting.oldest_waiting_s)

    def set_standing(self, standing: Standing) -> None:
        self.store_degraded.set(1 if standing.degraded else 0)
        self.store_waiting.set(standing.waiting)
        self.store_accepted.set(standing.accepted)

    def set_preflight(self, preflight: Preflight | None) -> None:
        if preflight is None:
            return
        for channel, failed in preflight.failed_by_channel().items():
            self.preflight_failed.labels(channel).set(failed)
        self.preflight_checked.set(preflight.checked_at)

    def _know(self, channels: Iterable[str]) -> None:
        """Give a channel every series at zero the first time it is seen, so a rate over a counter that has
        not moved yet reads 0 rather than nothing."""
        for channel in channels:
            if channel in self._channels:
                continue
            self._channels.add(channel)
            for outcome in sorted(FINAL_OUTCOMES):
                self.deliveries.labels(channel, outcome.value)
            self.retries.labels(channel)
            self.latency.labels(channel)


METRICS: Final = web.AppKey("metrics", ServiceMetrics)


def install(app: web.Application) -> None:
    """`/metrics` on an application that holds the runtime and the dispatcher."""
    runtime = app[RUNTIME]

    def now() -> float:  # the runtime's clock as it is at each call, as every handler reads it
        return runtime.clock()

    app[METRICS] = ServiceMetrics(clock=now)
    app.cleanup_ctx.append(_follow_the_dispatcher)
    app.router.add_get("/metrics", serve_metrics)


async def _follow_the_dispatcher(app: web.Application) -> AsyncIterator[None]:
    """Count from the moment the application starts until it is cleaned up."""
    dispatcher, metrics = app[DISPATCHER], app[METRICS]
    stop_events = dispatcher.subscribe(metrics.lane_event)
    stop_intake = dispatcher.subscribe_accepted(metrics.accepted)
    try:
        yield
    finally:
        stop_events()
        stop_intake()


async def serve_metrics(request: web.Request) -> web.StreamResponse:
    metrics = request.app[METRICS]
    lanes = [status.channel for status in request.app[DISPATCHER].statuses()]
    metrics.set_backlog(await request.app[JOURNAL_FIGURES].backlog(lanes))
    metrics.set_preflight(request.app[PREFLIGHT].latest)
    metrics.set_standing(request.app[RUNTIME].store.standing())
    return await metrics.exposition(request)
