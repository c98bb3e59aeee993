"""A small Prometheus text-format registry, one per server (no process-wide globals).

Counters and gauges with labels, and fixed-bucket histograms; ``render()`` writes the
exposition format served at ``GET /metrics``.
"""

from __future__ import annotations

import math
from collections import defaultdict

Labels = tuple[tuple[str, str], ...]


def _labels(labels: dict[str, str]) -> Labels:
    return tuple(sorted(labels.items()))


def _number(value: float) -> str:
    """Exact text for a sample value (``{:g}`` would keep only 6 digits)."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _fmt_labels(labels: Labels, extra: tuple[tuple[str, str], ...] = ()) -> str:
    items = [*labels, *extra]
    if not items:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in items)
    return "{" + body + "}"


class Metric:
    def __init__(self, name: str, help_text: str, kind: str) -> None:
        self.name = name
        self.help = help_text
        self.kind = kind
        self.values: dict[Labels, float] = defaultdict(float)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        self.values[_labels(labels)] += amount

    def set(self, value: float, **labels: str) -> None:
        self.values[_labels(labels)] = value

    def get(self, **labels: str) -> float:
        return self.values.get(_labels(labels), 0.0)

    def lines(self) -> list[str]:
        return [f"{self.name}{_fmt_labels(k)} {_number(v)}" for k, v in sorted(self.values.items())]


class Histogram(Metric):
    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...]) -> None:
        super().__init__(name, help_text, "histogram")
        self.buckets = (*buckets, math.inf)
        self.counts: dict[Labels, list[int]] = defaultdict(lambda: [0] * len(self.buckets))

    def observe(self, value: float, **labels: str) -> None:
        key = _labels(labels)
        counts = self.counts[key]
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                counts[i] += 1
        self.values[key] += value

    def lines(self) -> list[str]:
        out = []
        for key, counts in sorted(self.counts.items()):
            for bound, count in zip(self.buckets, counts, strict=True):
                le = "+Inf" if bound == math.inf else f"{bound:g}"
                out.append(f"{self.name}_bucket{_fmt_labels(key, (('le', le),))} {count}")
            out.append(f"{self.name}_sum{_fmt_labels(key)} {_number(self.values[key])}")
            out.append(f"{self.name}_count{_fmt_labels(key)} {counts[-1]}")
        return out


class Registry:
    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}

    def counter(self, name: str, help_text: str) -> Metric:
        return self._add(Metric(name, help_text, "counter"))

    def gauge(self, name: str, help_text: str) -> Metric:
        return self._add(Metric(name, help_text, "gauge"))

    def histogram(self, name: str, help_text: str, buckets: tuple[float, ...]) -> Histogram:
        metric = Histogram(name, help_text, buckets)
        self._add(metric)
        return metric

    def _add(self, metric: Metric) -> Metric:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} registered twice")
        self._metrics[metric.name] = metric
        return metric

    def render(self) -> str:
        out = []
        for metric in self._metrics.values():
            out.append(f"# HELP {metric.name} {metric.help}")
            out.append(f"# TYPE {metric.name} {metric.kind}")
            out.extend(metric.lines())
        return "\n".join(out) + "\n"


class ServiceMetrics:
    """The service's metrics, named in one place."""

    def __init__(self) -> None:
        r = self.registry = Registry()
        self.calls_active = r.gauge("assist_calls_active", "Live calls being processed.")
        self.calls_total = r.counter("assist_calls_total", "Calls started, by protocol.")
        self.audio_seconds = r.counter(
            "assist_audio_seconds_total",
            "Seconds of call audio processed (per call, not per channel).",
        )
        self.audio_dropped_seconds = r.counter(
            "assist_audio_dropped_seconds_total",
            "Seconds of call audio dropped because processing fell behind.",
        )
        self.findings = r.counter("assist_findings_total", "Cue findings, by kind.")
        self.nudges = r.counter("assist_nudges_total", "Nudges sent, by kind and severity.")
        self.nudges_suppressed = r.counter(
            "assist_nudges_suppressed_total", "Findings the nudge policy held back, by reason."
        )
        self.protocol_errors = r.counter(
            "assist_protocol_errors_total", "Bad input answered with an error, by code."
        )
        self.subscribers = r.gauge("assist_subscribers", "Event-stream subscribers, by stream.")
        self.subscriber_dropped = r.counter(
            "assist_subscriber_dropped_total", "Events dropped for slow subscribers."
        )
        self.transcripts = r.counter(
            "assist_transcripts_total", "Transcripts sent, by channel and final/partial."
        )
        self.asr_final_seconds = r.histogram(
            "assist_asr_final_seconds",
            "Wall time from an utterance's end being known to its final transcript.",
            (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0),
        )
        self.asr_shed = r.counter(
            "assist_asr_shed_total", "Utterances the ASR pool dropped, by reason."
        )
        self.asr_queue = r.gauge("assist_asr_queue", "Utterances waiting for an ASR worker.")
        self.asr_batches = r.counter("assist_asr_batches_total", "ASR steps, by batch size.")
        self.feedback = r.counter(
            "assist_nudge_feedback_total", "Agents' feedback on nudges, by kind and action."
        )
        self.processing_lag = r.histogram(
            "assist_processing_lag_seconds",
            "Wall time from an audio frame's arrival to the end of its processing.",
            (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
