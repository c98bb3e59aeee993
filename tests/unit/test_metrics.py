"""The service's metrics on prometheus-client, checked through its own exposition parser."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from assist.metrics import CONTENT_TYPE, ServiceMetrics
from assist.service import AssistService

# name as exposed (sample name) -> (type, help, label names)
EXPECTED = {
    "assist_calls_active": ("gauge", "Live calls being processed.", ()),
    "assist_calls_total": ("counter", "Calls started, by protocol.", ("protocol",)),
    "assist_audio_seconds_total": (
        "counter",
        "Seconds of call audio processed (per call, not per channel).",
        (),
    ),
    "assist_audio_dropped_seconds_total": (
        "counter",
        "Seconds of call audio dropped because processing fell behind.",
        (),
    ),
    "assist_media_frames_total": (
        "counter",
        "Frames of Twilio-style streams put back in order, or dropped as late or duplicate, "
        "by protocol and outcome.",
        ("protocol", "outcome"),
    ),
    "assist_media_lost_seconds_total": (
        "counter",
        "Track-seconds of Twilio-style stream audio that never came in time, replaced with "
        "silence, by protocol.",
        ("protocol",),
    ),
    "assist_findings_total": ("counter", "Cue findings, by kind.", ("kind",)),
    "assist_nudges_total": ("counter", "Nudges sent, by kind and severity.", ("kind", "severity")),
    "assist_nudges_suppressed_total": (
        "counter",
        "Findings the nudge policy held back, by reason.",
        ("reason",),
    ),
    "assist_protocol_errors_total": (
        "counter",
        "Bad input answered with an error, by code.",
        ("code",),
    ),
    "assist_subscribers": ("gauge", "Event-stream subscribers, by stream.", ("stream",)),
    "assist_subscriber_dropped_total": ("counter", "Events dropped for slow subscribers.", ()),
    "assist_transcripts_total": (
        "counter",
        "Transcripts sent, by channel and final/partial.",
        ("channel", "final"),
    ),
    "assist_asr_final_seconds": (
        "histogram",
        "Wall time from an utterance's end being known to its final transcript.",
        (),
    ),
    "assist_asr_shed_total": (
        "counter",
        "Utterances the ASR pool dropped, by reason.",
        ("reason",),
    ),
    "assist_asr_queue": ("gauge", "Utterances waiting for an ASR worker.", ()),
    "assist_asr_full_window_retries_total": (
        "counter",
        "Windowed ASR results redone with longer windows (15 s, then 30 s), by reason.",
        ("reason",),
    ),
    "assist_asr_batches_total": ("counter", "ASR steps, by batch size.", ("batch",)),
    "assist_nudge_feedback_total": (
        "counter",
        "Agents' feedback on nudges, by kind and action.",
        ("kind", "action"),
    ),
    "assist_store_queue": ("gauge", "Store writes waiting for the store's writer thread.", ()),
    "assist_store_queue_waits_total": (
        "counter",
        "Store writes that found the store's queue full and waited (nothing is dropped).",
        (),
    ),
    "assist_processing_lag_seconds": (
        "histogram",
        "Wall time from an audio frame's arrival to the end of its processing.",
        (),
    ),
}
BUCKETS = {
    "assist_asr_final_seconds": (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0),
    "assist_processing_lag_seconds": (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
}


def exposed(metrics: ServiceMetrics) -> dict[str, prometheus_client.Metric]:
    """The exposition parsed back, by exposed name (``_total`` kept on counters), without
    prometheus-client's ``*_created`` timestamp series."""
    families = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        if family.name.endswith("_created"):
            continue
        name = family.name + "_total" if family.type == "counter" else family.name
        assert name not in families
        families[name] = family
    return families


def samples(metrics: ServiceMetrics, sample_name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found: list[Sample] = [
        s for family in exposed(metrics).values() for s in family.samples if s.name == sample_name
    ]
    return {tuple(sorted(s.labels.items())): s.value for s in found}


def test_every_metric_is_exposed_with_its_type_and_help() -> None:
    families = exposed(ServiceMetrics())
    assert set(families) == set(EXPECTED)
    for name, (kind, help_text, _) in EXPECTED.items():
        assert (families[name].type, families[name].documentation) == (kind, help_text), name


def test_label_names_values_and_types_after_use() -> None:
    m = ServiceMetrics()
    m.calls_active.set(2)
    m.calls_active.inc(-1)
    m.calls_total.inc(protocol="native")
    m.calls_total.inc(2, protocol="native")
    m.calls_total.inc(protocol="twilio")
    m.audio_seconds.inc(0.02)
    m.audio_dropped_seconds.inc(1.5)
    m.findings.inc(kind="dead_air")
    m.nudges.inc(kind="dead_air", severity="info")
    m.nudges_suppressed.inc(4, reason="cooldown")
    m.protocol_errors.inc(code="bad_json")
    m.subscribers.set(3, stream="floor")
    m.subscriber_dropped.inc(7)
    m.transcripts.inc(channel="agent", final="true")
    m.feedback.inc(kind="pace", action="helpful")
    m.asr_queue.set(5)
    m.asr_final_seconds.observe(0.3)
    m.processing_lag.observe(0.004)
    m.asr_shed.mirror(Counter(stale=2))
    m.asr_batches.mirror(Counter({4: 9}))

    assert samples(m, "assist_calls_active") == {(): 1.0}
    assert samples(m, "assist_calls_total") == {
        (("protocol", "native"),): 3.0,
        (("protocol", "twilio"),): 1.0,
    }
    assert samples(m, "assist_audio_seconds_total") == {(): 0.02}
    assert samples(m, "assist_audio_dropped_seconds_total") == {(): 1.5}
    assert samples(m, "assist_nudges_total") == {(("kind", "dead_air"), ("severity", "info")): 1}
    assert samples(m, "assist_nudges_suppressed_total") == {(("reason", "cooldown"),): 4.0}
    assert samples(m, "assist_subscribers") == {(("stream", "floor"),): 3.0}
    assert samples(m, "assist_subscriber_dropped_total") == {(): 7.0}
    assert samples(m, "assist_transcripts_total") == {(("channel", "agent"), ("final", "true")): 1}
    assert samples(m, "assist_nudge_feedback_total") == {
        (("action", "helpful"), ("kind", "pace")): 1
    }
    assert samples(m, "assist_asr_queue") == {(): 5.0}
    assert samples(m, "assist_asr_shed_total") == {(("reason", "stale"),): 2.0}
    assert samples(m, "assist_asr_batches_total") == {(("batch", "4"),): 9.0}
    # every labelled sample carries exactly the declared label names
    for name, family in exposed(m).items():
        for s in family.samples:
            assert set(s.labels) - {"le"} == set(EXPECTED[name][2]), s
    # the facade reads the same values back
    assert m.calls_total.get(protocol="native") == 3.0
    assert m.calls_total.get(protocol="never") == 0.0
    assert m.asr_shed.get(reason="stale") == 2.0
    assert m.asr_batches.get(batch="4") == 9.0


@pytest.mark.parametrize("name", sorted(BUCKETS))
def test_histogram_buckets_sum_and_count(name: str) -> None:
    m = ServiceMetrics()
    histogram = m.asr_final_seconds if name == "assist_asr_final_seconds" else m.processing_lag
    bounds = BUCKETS[name]
    observed = [bounds[0] / 2, bounds[0], bounds[len(bounds) // 2], bounds[-1] * 2]
    for value in observed:
        histogram.observe(value)
    buckets = samples(m, f"{name}_bucket")
    les = [float(dict(key)["le"]) for key in buckets]
    assert les == [*bounds, float("inf")]
    for key, count in buckets.items():
        le = float(dict(key)["le"])
        assert count == sum(1 for v in observed if v <= le), le
    assert samples(m, f"{name}_count") == {(): len(observed)}
    assert samples(m, f"{name}_sum")[()] == pytest.approx(sum(observed))
    assert histogram.count() == len(observed)
    assert histogram.get() == pytest.approx(sum(observed))


def test_two_services_do_not_share_values_or_the_default_registry() -> None:
    a, b = ServiceMetrics(), ServiceMetrics()
    a.calls_total.inc(protocol="native")
    a.processing_lag.observe(0.5)
    a.asr_shed.mirror(Counter(full=1))
    assert b.calls_total.get(protocol="native") == 0.0
    assert b.processing_lag.count() == 0.0
    assert b.asr_shed.get(reason="full") == 0.0
    assert samples(b, "assist_calls_total") == {}
    assert samples(b, "assist_asr_shed_total") == {}
    assert a.registry is not b.registry
    assert prometheus_client.REGISTRY.get_sample_value("assist_calls_total", {}) is None
    default_names = {f.name for f in prometheus_client.REGISTRY.collect()}
    assert not any(n.startswith("assist_") for n in default_names)


def test_labels_must_be_the_declared_ones() -> None:
    m = ServiceMetrics()
    with pytest.raises(ValueError, match="assist_calls_total"):
        m.calls_total.inc()
    with pytest.raises(ValueError, match="assist_nudges_total"):
        m.nudges.inc(kind="dead_air")
    with pytest.raises(ValueError, match="assist_calls_active"):
        m.calls_active.set(1, stream="floor")
    with pytest.raises(ValueError, match="assist_asr_shed_total"):
        m.asr_shed.get(why="x")


def test_counters_only_go_up() -> None:
    with pytest.raises(ValueError):
        ServiceMetrics().audio_seconds.inc(-1)


def test_mirrored_counts_are_read_at_scrape_time() -> None:
    m = ServiceMetrics()
    shed: Counter[str] = Counter()
    m.asr_shed.mirror(shed)
    assert samples(m, "assist_asr_shed_total") == {}
    shed["stale"] += 1
    shed["full"] += 3
    assert samples(m, "assist_asr_shed_total") == {
        (("reason", "stale"),): 1.0,
        (("reason", "full"),): 3.0,
    }


def test_refresh_gauges_exposes_the_pool_and_hub_counts() -> None:
    m = ServiceMetrics()
    pool = SimpleNamespace(queue_length=2, shed=Counter(stale=1), batches=Counter({1: 5, 8: 2}))
    hub = SimpleNamespace(subscriber_counts=lambda: {"agent": 1, "floor": 0})
    store = SimpleNamespace(queued=3)
    service = SimpleNamespace(metrics=m, hub=hub, asr_pool=pool, store=store)
    AssistService.refresh_gauges(service)  # type: ignore[arg-type]
    assert samples(m, "assist_store_queue") == {(): 3.0}
    pool.shed["stale"] += 1  # counted after the refresh: still seen at the next scrape
    assert samples(m, "assist_asr_queue") == {(): 2.0}
    assert samples(m, "assist_asr_shed_total") == {(("reason", "stale"),): 2.0}
    assert samples(m, "assist_asr_batches_total") == {
        (("batch", "1"),): 5.0,
        (("batch", "8"),): 2.0,
    }
    assert samples(m, "assist_subscribers") == {
        (("stream", "agent"),): 1.0,
        (("stream", "floor"),): 0.0,
    }


@pytest.mark.parametrize("value", ["plain", 'say "hi"', "back\\slash", "two\nlines", 'all\\"\n'])
def test_label_values_round_trip(value: str) -> None:
    m = ServiceMetrics()
    m.protocol_errors.inc(code=value)
    assert samples(m, "assist_protocol_errors_total") == {(("code", value),): 1.0}


@pytest.mark.parametrize("value", [1234567.0, 86400.25, 12_345_678.0])
def test_large_values_are_exact(value: float) -> None:
    m = ServiceMetrics()
    m.audio_seconds.inc(value)
    m.processing_lag.observe(value)
    assert samples(m, "assist_audio_seconds_total") == {(): value}
    assert samples(m, "assist_processing_lag_seconds_sum") == {(): value}


def test_content_type_is_prometheus_clients() -> None:
    assert CONTENT_TYPE == prometheus_client.CONTENT_TYPE_LATEST
    assert CONTENT_TYPE.startswith("text/plain")
