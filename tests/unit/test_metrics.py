"""The Prometheus text-format registry: counters, gauges, histograms, label escaping."""

from __future__ import annotations

import pytest

from assist.metrics import Registry, ServiceMetrics


def sample_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_counter_rendering() -> None:
    r = Registry()
    c = r.counter("jobs_total", "Jobs done.")
    c.inc()
    c.inc(2.5)
    c.inc(kind="b")
    c.inc(3, kind="a")
    assert r.render() == (
        "# HELP jobs_total Jobs done.\n"
        "# TYPE jobs_total counter\n"
        "jobs_total 3.5\n"
        'jobs_total{kind="a"} 3\n'
        'jobs_total{kind="b"} 1\n'
    )
    assert c.get() == 3.5
    assert c.get(kind="a") == 3.0
    assert c.get(kind="missing") == 0.0


def test_labels_are_sorted_by_name_whatever_the_call_order() -> None:
    r = Registry()
    c = r.counter("x_total", "X.")
    c.inc(z="1", a="2")
    c.inc(a="2", z="1")
    assert sample_lines(r.render()) == ['x_total{a="2",z="1"} 2']


def test_gauge_set_overwrites() -> None:
    r = Registry()
    g = r.gauge("active", "Active things.")
    g.set(5)
    g.set(2)
    g.set(1.5, stream="floor")
    g.inc(-1, stream="floor")
    text = r.render()
    assert "# TYPE active gauge\n" in text
    assert sample_lines(text) == ["active 2", 'active{stream="floor"} 0.5']


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        ("plain", "plain"),
        ('say "hi"', 'say \\"hi\\"'),
        ("back\\slash", "back\\\\slash"),
        ("two\nlines", "two\\nlines"),
        ('all\\"\n', 'all\\\\\\"\\n'),
    ],
)
def test_label_value_escaping(value: str, rendered: str) -> None:
    r = Registry()
    r.counter("esc_total", "E.").inc(v=value)
    assert sample_lines(r.render()) == [f'esc_total{{v="{rendered}"}} 1']


def test_histogram_rendering() -> None:
    r = Registry()
    h = r.histogram("lag_seconds", "Lag.", (0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 5.0):
        h.observe(v)
    h.observe(0.2, path="x")
    assert r.render() == (
        "# HELP lag_seconds Lag.\n"
        "# TYPE lag_seconds histogram\n"
        'lag_seconds_bucket{le="0.1"} 2\n'
        'lag_seconds_bucket{le="1"} 3\n'
        'lag_seconds_bucket{le="+Inf"} 4\n'
        "lag_seconds_sum 5.65\n"
        "lag_seconds_count 4\n"
        'lag_seconds_bucket{path="x",le="0.1"} 0\n'
        'lag_seconds_bucket{path="x",le="1"} 1\n'
        'lag_seconds_bucket{path="x",le="+Inf"} 1\n'
        'lag_seconds_sum{path="x"} 0.2\n'
        'lag_seconds_count{path="x"} 1\n'
    )


def test_histogram_without_observations_renders_only_header() -> None:
    r = Registry()
    r.histogram("empty_seconds", "Nothing yet.", (1.0,))
    assert r.render() == "# HELP empty_seconds Nothing yet.\n# TYPE empty_seconds histogram\n"


def test_metrics_render_in_registration_order() -> None:
    r = Registry()
    r.gauge("b_gauge", "B.").set(1)
    r.counter("a_total", "A.").inc()
    text = r.render()
    assert text.index("b_gauge") < text.index("a_total")
    assert text.endswith("\n")


@pytest.mark.parametrize("kind", ["counter", "gauge", "histogram"])
def test_duplicate_registration_is_an_error(kind: str) -> None:
    r = Registry()
    r.counter("dup", "first")
    with pytest.raises(ValueError, match="dup"):
        if kind == "histogram":
            r.histogram("dup", "second", (1.0,))
        else:
            getattr(r, kind)("dup", "second")


def test_service_metrics_are_all_registered_once() -> None:
    text = ServiceMetrics().registry.render()
    types = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert len(types) == len(set(types))
    assert "assist_calls_active" in types
    assert "assist_processing_lag_seconds" in types
    # two service instances don't share state (no process-wide registry)
    a, b = ServiceMetrics(), ServiceMetrics()
    a.calls_total.inc(protocol="native")
    assert b.calls_total.get(protocol="native") == 0.0


@pytest.mark.parametrize("value", [1234567.0, 86400.25, 12_345_678.0])
def test_large_values_render_exactly(value: float) -> None:
    r = Registry()
    r.counter("big_total", "Big.").inc(value)
    r.histogram("big_seconds", "Big.", (1.0,)).observe(value)
    for line in sample_lines(r.render()):
        if line.startswith(("big_total", "big_seconds_sum")):
            assert float(line.rsplit(" ", 1)[1]) == value
