"""The service's Prometheus metrics, on prometheus-client, one registry per service.

Each ``ServiceMetrics`` owns its own ``CollectorRegistry`` (never the process-wide default
one), so several services can run in one process (tests, benchmarks). ``render()`` is the
exposition served at ``GET /metrics`` (content type ``CONTENT_TYPE``).

The classes here are a thin typed facade over prometheus-client's metrics that keeps the
call sites short: ``.inc(amount=1, **labels)``, ``.set(value, **labels)``,
``.observe(value, **labels)``, and ``.get(**labels)`` for tests. Label names are declared
per metric up front; a call must give exactly those labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import prometheus_client as prom
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import CollectorRegistry

CONTENT_TYPE = prom.CONTENT_TYPE_LATEST


class _Labelled:
    """One prometheus-client metric and the label names it was declared with."""

    def __init__(
        self,
        metric: MetricWrapperBase,
        registry: CollectorRegistry,
        name: str,
        labelnames: Sequence[str],
    ) -> None:
        self._metric = metric
        self._registry = registry
        self.name = name
        self.labelnames = tuple(labelnames)

    def _child(self, labels: dict[str, str]) -> Any:
        if set(labels) != set(self.labelnames):
            raise ValueError(
                f"{self.name} takes labels {list(self.labelnames)}, got {sorted(labels)}"
            )
        return self._metric.labels(**labels) if labels else self._metric

    def _sample(self, sample: str, labels: dict[str, str]) -> float:
        value = self._registry.get_sample_value(sample, labels)
        return 0.0 if value is None else value


class _Summable(_Labelled):
    """A metric that counts up (counter) or is set (gauge): ``inc`` and ``get``."""

    kind: type[MetricWrapperBase]

    def __init__(
        self, registry: CollectorRegistry, name: str, help_text: str, labels: Sequence[str] = ()
    ) -> None:
        metric = self.kind(name, help_text, labels, registry=registry)
        super().__init__(metric, registry, name, labels)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        """Add ``amount`` (>= 0 for a counter; prometheus-client raises otherwise)."""
        self._child(labels).inc(amount)

    def get(self, **labels: str) -> float:
        """The current value (0 for a label set never touched). Meant for tests."""
        return self._sample(self.name, labels)


class Counter(_Summable):
    """A prometheus-client counter (exposed as ``<name>_total``)."""

    kind = prom.Counter


class Gauge(_Summable):
    """A prometheus-client gauge: a value that goes up and down."""

    kind = prom.Gauge

    def set(self, value: float, **labels: str) -> None:
        """Set the value for this label set."""
        self._child(labels).set(value)


class Histogram(_Labelled):
    """A prometheus-client histogram with fixed ``buckets`` (upper bounds, in the unit of
    the metric, seconds here)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        name: str,
        help_text: str,
        buckets: Sequence[float],
        labels: Sequence[str] = (),
    ) -> None:
        metric = prom.Histogram(name, help_text, labels, registry=registry, buckets=buckets)
        super().__init__(metric, registry, name, labels)
        self.buckets = tuple(buckets)

    def observe(self, value: float, **labels: str) -> None:
        """Count one observation of ``value`` in its bucket."""
        self._child(labels).observe(value)

    def get(self, **labels: str) -> float:
        """The sum of the observations. Meant for tests."""
        return self._sample(f"{self.name}_sum", labels)

    def count(self, **labels: str) -> float:
        """How many observations. Meant for tests."""
        return self._sample(f"{self.name}_count", labels)


class MirroredCounter:
    """A counter whose counts are kept elsewhere (e.g. the ASR pool's own ``Counter``),
    read at scrape time: ``mirror(counts)`` binds the live mapping, label value -> count."""

    def __init__(self, registry: CollectorRegistry, name: str, help_text: str, label: str) -> None:
        self.name = name
        self.help = help_text
        self.label = label
        self._counts: Mapping[Any, float] = {}
        registry.register(self)

    def mirror(self, counts: Mapping[Any, float]) -> None:
        """Expose ``counts`` (label value -> count, kept up to date by its owner)."""
        self._counts = counts

    def _family(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self.help, labels=[self.label])

    def describe(self) -> Iterable[CounterMetricFamily]:
        """The family this collector exposes (prometheus-client collector protocol)."""
        return [self._family()]

    def collect(self) -> Iterable[CounterMetricFamily]:
        """The counts as they are now, one sample per label value."""
        family = self._family()
        for value, count in dict(self._counts).items():  # a copy: the owner may be counting
            family.add_metric([str(value)], count)
        return [family]

    def get(self, **labels: str) -> float:
        """The count of one label value (0 if never counted); ``ValueError`` for other
        labels. Meant for tests."""
        if set(labels) != {self.label}:
            raise ValueError(f"{self.name} takes labels [{self.label!r}], got {sorted(labels)}")
        counts = {str(k): v for k, v in dict(self._counts).items()}
        return float(counts.get(labels[self.label], 0.0))


class ServiceMetrics:
    """The service's metrics, named in one place, in a registry of their own."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.calls_active = Gauge(r, "assist_calls_active", "Live calls being processed.")
        self.calls_total = Counter(
            r, "assist_calls_total", "Calls started, by protocol.", ["protocol"]
        )
        self.audio_seconds = Counter(
            r,
            "assist_audio_seconds_total",
            "Seconds of call audio processed (per call, not per channel).",
        )
        self.audio_dropped_seconds = Counter(
            r,
            "assist_audio_dropped_seconds_total",
            "Seconds of call audio dropped because processing fell behind.",
        )
        self.media_frames = Counter(
            r,
            "assist_media_frames_total",
            "Frames of Twilio-style streams put back in order, or dropped as late or duplicate, "
            "by protocol and outcome.",
            ["protocol", "outcome"],
        )
        self.media_lost_seconds = Counter(
            r,
            "assist_media_lost_seconds_total",
            "Track-seconds of Twilio-style stream audio that never came in time, replaced with "
            "silence, by protocol.",
            ["protocol"],
        )
        self.findings = Counter(r, "assist_findings_total", "Cue findings, by kind.", ["kind"])
        self.nudges = Counter(
            r, "assist_nudges_total", "Nudges sent, by kind and severity.", ["kind", "severity"]
        )
        self.nudges_suppressed = Counter(
            r,
            "assist_nudges_suppressed_total",
            "Findings the nudge policy held back, by reason.",
            ["reason"],
        )
        self.protocol_errors = Counter(
            r,
            "assist_protocol_errors_total",
            "Bad input answered with an error, by code.",
            ["code"],
        )
        self.subscribers = Gauge(
            r, "assist_subscribers", "Event-stream subscribers, by stream.", ["stream"]
        )
        self.subscriber_dropped = Counter(
            r, "assist_subscriber_dropped_total", "Events dropped for slow subscribers."
        )
        self.transcripts = Counter(
            r,
            "assist_transcripts_total",
            "Transcripts sent, by channel and final/partial.",
            ["channel", "final"],
        )
        self.asr_final_seconds = Histogram(
            r,
            "assist_asr_final_seconds",
            "Wall time from an utterance's end being known to its final transcript.",
            (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0),
        )
        self.asr_shed = MirroredCounter(
            r, "assist_asr_shed_total", "Utterances the ASR pool dropped, by reason.", "reason"
        )
        self.asr_queue = Gauge(r, "assist_asr_queue", "Utterances waiting for an ASR worker.")
        self.asr_full_window_retries = Counter(
            r,
            "assist_asr_full_window_retries_total",
            "Windowed ASR results redone with longer windows (15 s, then 30 s), by reason.",
            ["reason"],
        )
        self.asr_batches = MirroredCounter(
            r, "assist_asr_batches_total", "ASR steps, by batch size.", "batch"
        )
        self.feedback = Counter(
            r,
            "assist_nudge_feedback_total",
            "Agents' feedback on nudges, by kind and action.",
            ["kind", "action"],
        )
        self.store_queue = Gauge(
            r, "assist_store_queue", "Store writes waiting for the store's writer thread."
        )
        self.store_queue_waits = Counter(
            r,
            "assist_store_queue_waits_total",
            "Store writes that found the store's queue full and waited (nothing is dropped).",
        )
        self.processing_lag = Histogram(
            r,
            "assist_processing_lag_seconds",
            "Wall time from an audio frame's arrival to the end of its processing.",
            (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )

    def render(self) -> bytes:
        """The exposition for ``GET /metrics``, in the ``CONTENT_TYPE`` format."""
        return prom.generate_latest(self.registry)
