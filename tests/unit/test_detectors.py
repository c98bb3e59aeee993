"""Cue detectors driven by a ConversationTracker over synthetic per-channel windows."""

from __future__ import annotations

import pytest

from assist.config import Settings
from assist.conversation import ConversationTracker
from assist.detectors import build_detectors
from assist.vocabulary import WINDOW_S, Finding, WindowActivity

# char -> (speech probability, dBFS)
LEVELS: dict[str, tuple[float, float]] = {
    "#": (0.9, -20.0),  # speech
    ".": (0.02, -60.0),  # quiet room: not speech, not music, not line silence
    "m": (0.01, -30.0),  # hold music
}


def s(char: str, seconds: float) -> str:
    """``seconds`` of one kind of window."""
    return char * round(seconds / WINDOW_S)


def idx(seconds: float) -> int:
    """The index of the window that starts at ``seconds``."""
    return round(seconds / WINDOW_S)


def run(
    customer: str,
    agent: str,
    settings: Settings | None = None,
    cti: dict[int, bool] | None = None,
) -> tuple[list[Finding], ConversationTracker]:
    """Feed both channels in lockstep (the shorter one padded with quiet windows);
    ``cti`` holds CTI hold events applied just before the window with that index."""
    settings = settings or Settings()
    cti = cti or {}
    n = max(len(customer), len(agent), *(i + 1 for i in cti))
    customer = customer.ljust(n, ".")
    agent = agent.ljust(n, ".")
    tracker = ConversationTracker(settings, ["customer", "agent"])
    detectors = build_detectors(settings.cues)
    findings: list[Finding] = []
    for i in range(n):
        if i in cti:
            tracker.set_cti_hold(cti[i])
        tick = tracker.feed(
            {
                "customer": WindowActivity(i, *LEVELS[customer[i]]),
                "agent": WindowActivity(i, *LEVELS[agent[i]]),
            }
        )
        for detector in detectors:
            findings.extend(detector.on_tick(tick))
    return findings, tracker


def of_kind(findings: list[Finding], kind: str) -> list[Finding]:
    return [f for f in findings if f.kind == kind]


# Patterns are whole windows (``s`` rounds to 32 ms), a gate needs two windows to confirm
# speech, and a threshold is crossed at the end of a window: allow three windows.
TOL = 3 * WINDOW_S


def assert_times(findings: list[Finding], expected: list[float]) -> None:
    """One finding per expected media time, each within ``TOL``."""
    got = [f.at_s for f in findings]
    assert len(got) == len(expected), got
    for t, want in zip(got, expected, strict=True):
        assert abs(t - want) <= TOL, (got, expected)


# ------------------------------------------------------------------------ interruption


@pytest.mark.parametrize(
    ("customer", "agent", "expected"),
    [
        pytest.param(s("#", 3.2), s(".", 1.6) + s("#", 1.6), [2.4], id="agent-talks-over"),
        pytest.param(s("#", 6), s(".", 1) + s("#", 5), [1.8], id="long-overlap-fires-once"),
        pytest.param(
            s("#", 6),
            s(".", 0.5) + s("#", 1) + s(".", 1) + s("#", 1.5),
            [1.3, 3.3],
            id="two-agent-onsets",
        ),
        pytest.param(s("#", 4), s(".", 1.6) + s("#", 0.5), [], id="backchannel-0.5s"),
        pytest.param(s("#", 4), s(".", 1.6) + s("#", 0.7), [], id="backchannel-0.7s"),
        pytest.param(s("#", 3.2), s(".", 3.264) + s("#", 3), [], id="turn-taking"),
        pytest.param(s("#", 3.2), s(".", 3.2) + s("#", 3), [], id="starts-as-customer-stops"),
        pytest.param(s("#", 3.2), s(".", 3.0) + s("#", 3), [], id="starts-0.2s-before-end"),
        pytest.param(s(".", 1.6) + s("#", 3), s("#", 4), [], id="customer-interrupts-agent"),
        pytest.param(s("#", 2), s("#", 2), [], id="both-start-together"),
        pytest.param(s(".", 4), s("#", 4), [], id="agent-alone"),
    ],
)
def test_interruption(customer: str, agent: str, expected: list[float]) -> None:
    findings, _ = run(customer, agent)
    found = of_kind(findings, "interruption")
    assert_times(found, expected)
    for f in found:
        assert f.measured >= 0.8
        assert f.measured <= 0.8 + 2 * WINDOW_S
        assert f.threshold == 0.8
        assert f.severity == "warning"
        assert f.rule == "cues.interruption.min_overlap_s"
        assert f.span_end_s == f.at_s
        assert f.span_start_s == pytest.approx(f.at_s - f.measured, abs=1e-6)


def test_interruption_span_starts_at_agent_onset() -> None:
    findings, _ = run(s("#", 3.2), s(".", 1.6) + s("#", 1.6))
    (f,) = of_kind(findings, "interruption")
    assert f.span_start_s == pytest.approx(1.6, abs=1e-9)


@pytest.mark.parametrize(("min_overlap_s", "fires"), [(0.4, True), (1.5, True), (2.0, False)])
def test_interruption_threshold_from_config(min_overlap_s: float, fires: bool) -> None:
    settings = Settings(cues={"interruption": {"min_overlap_s": min_overlap_s}})
    findings, _ = run(s("#", 3.5), s(".", 1.6) + s("#", 1.8), settings)
    found = of_kind(findings, "interruption")
    assert len(found) == int(fires)
    if fires:
        assert_times(found, [1.6 + min_overlap_s])


# ------------------------------------------------------------------------ dead air


@pytest.mark.parametrize(
    ("customer", "agent", "cti", "expected", "span_starts"),
    [
        pytest.param(s(".", 10), "", {}, [8.0], [0.0], id="from-call-start"),
        pytest.param(s(".", 30), "", {}, [8.0], [0.0], id="fires-once-per-silence"),
        pytest.param(s("#", 2) + s(".", 10), "", {}, [10.0], [2.0], id="after-customer"),
        pytest.param("", s("#", 2) + s(".", 10), {}, [10.0], [2.0], id="after-agent"),
        pytest.param(s(".", 5) + s("#", 1) + s(".", 7.5), "", {}, [], [], id="short-silences"),
        pytest.param(
            s(".", 10) + s("#", 1) + s(".", 10), "", {}, [8.0, 19.0], [0.0, 11.0], id="twice"
        ),
        pytest.param(s(".", 40), "", {0: True}, [], [], id="never-during-hold"),
        pytest.param(
            s(".", 40),
            "",
            {idx(3): True, idx(23): False},
            [31.0],
            [23.0],
            id="counts-from-hold-end",
        ),
        pytest.param(
            s(".", 20),
            "",
            {idx(6): True, idx(7): False},
            [15.0],
            [7.0],
            id="short-hold-restarts-count",
        ),
    ],
)
def test_dead_air(
    customer: str,
    agent: str,
    cti: dict[int, bool],
    expected: list[float],
    span_starts: list[float],
) -> None:
    findings, _ = run(customer, agent, cti=cti)
    found = of_kind(findings, "dead_air")
    assert_times(found, expected)
    for f, start in zip(found, span_starts, strict=True):
        assert f.span_start_s == pytest.approx(start, abs=TOL)
        assert f.measured >= 8.0
        assert f.measured == pytest.approx(f.at_s - f.span_start_s, abs=1e-6)
        assert f.severity == "info"
        assert f.threshold == 8.0


def test_dead_air_not_during_inferred_music_hold() -> None:
    # Music on the agent channel is inferred as hold, backdated to its first window.
    findings, tracker = run(s(".", 60), s("m", 60))
    assert of_kind(findings, "dead_air") == []
    assert tracker.totals.holds == [(0.0, None)]


# ------------------------------------------------------------------------ long hold


@pytest.mark.parametrize(
    ("cues", "hold_s", "expected"),
    [
        pytest.param({}, 100, [(45.0, "warning", 1), (90.0, "critical", 2)], id="defaults"),
        pytest.param({}, 44, [], id="defaults-short"),
        pytest.param(
            {"long_hold": {"min_hold_s": 2, "remind_every_s": 2, "critical_after_s": 4}},
            7,
            [(2.0, "warning", 1), (4.0, "critical", 2), (6.0, "critical", 3)],
            id="small",
        ),
        pytest.param(
            {"long_hold": {"min_hold_s": 2, "remind_every_s": 3, "critical_after_s": 10}},
            9,
            [(2.0, "warning", 1), (5.0, "warning", 2), (8.0, "warning", 3)],
            id="never-critical",
        ),
    ],
)
def test_long_hold(
    cues: dict[str, dict[str, float]], hold_s: float, expected: list[tuple[float, str, int]]
) -> None:
    settings = Settings(cues=cues)
    findings, _ = run(s(".", hold_s), "", settings, cti={0: True})
    found = of_kind(findings, "long_hold")
    assert_times(found, [t for t, _, _ in expected])
    for f, (t, severity, reminder) in zip(found, expected, strict=True):
        assert f.severity == severity
        assert f.details == {"reminder": reminder, "source": "cti"}
        assert f.span_start_s == 0.0
        assert f.threshold == pytest.approx(t)
        assert f.measured >= f.threshold


def test_long_hold_counts_from_hold_start_and_restarts_per_hold() -> None:
    settings = Settings(
        cues={"long_hold": {"min_hold_s": 2, "remind_every_s": 2, "critical_after_s": 4}}
    )
    cti = {idx(1): True, idx(4): False, idx(5): True, idx(8): False}
    findings, tracker = run(s(".", 10), "", settings, cti=cti)
    found = of_kind(findings, "long_hold")
    assert_times(found, [3.0, 7.0])
    assert [f.details["reminder"] for f in found] == [1, 1]
    assert [f.span_start_s for f in found] == pytest.approx([1.0, 5.0], abs=TOL)
    assert tracker.totals.holds == [
        pytest.approx((1.0, 4.0), abs=TOL),
        pytest.approx((5.0, 8.0), abs=TOL),
    ]


def test_long_hold_from_inferred_music_is_backdated() -> None:
    settings = Settings(
        cues={"long_hold": {"min_hold_s": 2, "remind_every_s": 10, "critical_after_s": 60}}
    )
    findings, _ = run("", s(".", 1) + s("m", 5), settings)
    (f,) = of_kind(findings, "long_hold")
    assert f.details["source"] == "music"
    assert f.span_start_s == pytest.approx(1.0, abs=TOL)
    # Music is recognised after ~1.8 s and backdated, so the 2 s hold is reached on time.
    assert_times([f], [3.0])


# ------------------------------------------------------------------------ monologue


def agent_talk(seconds: float) -> str:
    """Agent speech with a 0.5 s breath every 3.5 s (each pause ends a gate segment)."""
    return (s("#", 3.5) + s(".", 0.5)) * round(seconds / 4)


@pytest.mark.parametrize(
    ("customer", "agent", "expected"),
    [
        pytest.param("", agent_talk(64), [60.0], id="fires-at-60s"),
        pytest.param("", agent_talk(120), [60.0], id="once-per-turn"),
        pytest.param("", agent_talk(56), [], id="too-short"),
        pytest.param(
            s(".", 30.2) + s("#", 1.5),
            agent_talk(28) + s(".", 4) + agent_talk(68),
            [92.0],
            id="customer-turn-resets",
        ),
        pytest.param(
            s(".", 30.2) + s("#", 1.5),
            agent_talk(64),
            [],
            id="customer-turn-over-agent-resets",
        ),
        pytest.param(s(".", 30.1) + s("#", 0.5), agent_talk(64), [60.0], id="backchannel-0.5s"),
        pytest.param(s(".", 30.1) + s("#", 0.7), agent_talk(64), [60.0], id="backchannel-0.7s"),
        pytest.param(
            "",
            agent_talk(32) + s(".", 3.5) + agent_talk(64),
            [95.5],
            id="long-pause-resets",
        ),
        pytest.param("", agent_talk(32) + s(".", 2) + agent_talk(32), [60.0], id="2.5s-pause-kept"),
        pytest.param(s("#", 64), "", [], id="customer-monologue-not-a-cue"),
    ],
)
def test_monologue(customer: str, agent: str, expected: list[float]) -> None:
    findings, _ = run(customer, agent)
    found = of_kind(findings, "monologue")
    assert_times(found, expected)
    for f, t in zip(found, expected, strict=True):
        assert f.span_start_s == pytest.approx(t - 60.0, abs=TOL)
        assert f.measured >= 60.0
        assert f.severity == "info"


@pytest.mark.parametrize("seconds", [0.8, 0.9])
def test_monologue_backchannel_just_under_a_turn_does_not_reset(seconds: float) -> None:
    findings, _ = run(s(".", 30.1) + s("#", seconds), agent_talk(64))
    assert_times(of_kind(findings, "monologue"), [60.0])


def test_monologue_during_hold_is_reset() -> None:
    findings, _ = run("", agent_talk(64), cti={idx(30): True, idx(31): False})
    assert of_kind(findings, "monologue") == []


@pytest.mark.parametrize("silence_before_music_s", [0.5, 6.5, 7.2])
def test_silence_that_turns_into_music_hold_is_not_dead_air(silence_before_music_s: float) -> None:
    """Music is only a hold once 60 % of a 3 s span is music, so the hold is known up to
    ~1.8 s after the music starts; the silence before it must not fire dead air meanwhile.
    (Silence of 7.25-8 s before music still fires: 0.75 s of music is needed to wait.)"""
    agent = s("#", 2.0) + s(".", silence_before_music_s) + s("m", 50.0) + s("#", 2.0)
    findings, _tracker = run("", agent)
    assert of_kind(findings, "dead_air") == []
    holds = of_kind(findings, "long_hold")
    assert len(holds) == 1
    assert holds[0].span_start_s == pytest.approx(2.0 + silence_before_music_s, abs=0.07)


def test_short_music_like_burst_only_delays_dead_air() -> None:
    agent = s("#", 2.0) + s(".", 6.0) + s("m", 0.8) + s(".", 6.0)
    findings, _ = run("", agent)
    dead = of_kind(findings, "dead_air")
    assert len(dead) == 1
    # fired once the burst left the 3 s music span, measuring the whole silence
    assert dead[0].span_start_s == pytest.approx(2.0, abs=0.07)
    assert dead[0].measured >= 8.0
