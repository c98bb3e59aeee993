"""The echo detector/suppressor (``assist/echo.py``) on synthetic signals: speech-like
babble (syllables of voiced harmonics under smooth envelopes, seeded) on both channels,
the agent's mixed onto the customer's with a known delay and return loss. A stand-in VAD
calls every window above -50 dBFS speech, so what the suppressor decides is all there is.
"""

from __future__ import annotations

import numpy as np
import pytest

from assist.config import EchoConfig, Settings
from assist.echo import EchoSuppressor
from assist.pipeline import CallPipeline
from assist.vocabulary import VAD_RATE, WINDOW_S, WINDOW_SAMPLES, CallSpec, WindowActivity

RATE = VAD_RATE
FRAME = 160  # 20 ms, as the line delivers it
NOISE_DBFS = -60.0
SPEECH_DBFS = -55.0  # the stand-in VAD's threshold (the gate's min_speech_dbfs)


def babble(seconds: float, seed: int, level_dbfs: float = -20.0, talk: float = 1.0) -> np.ndarray:
    """Speech-like float32 audio at 8 kHz: words of 2-5 syllables (80-260 ms, f0 90-230 Hz,
    a few decaying harmonics under a raised-cosine envelope), 40-150 ms between syllables,
    0.2-0.7 s between words; ``talk`` is the share of words kept (the rest is silence).
    RMS of the voiced parts at ``level_dbfs``."""
    rng = np.random.default_rng(seed)
    out = np.zeros(round(seconds * RATE), dtype=np.float64)
    t = 0.1
    while t < seconds - 0.3:
        spoken = rng.random() < talk
        for _ in range(rng.integers(2, 6)):
            n = round(rng.uniform(0.08, 0.26) * RATE)
            start = round(t * RATE)
            if start + n > len(out):
                break
            if spoken:
                f0 = rng.uniform(90, 230) * np.linspace(1.0, rng.uniform(0.85, 1.15), n)
                phase = 2 * np.pi * np.cumsum(f0) / RATE
                voice = sum(np.sin(h * phase) / h**1.2 for h in range(1, 12) if h * 230 < 3800)
                out[start : start + n] += voice * np.hanning(n) * rng.uniform(0.4, 1.0)
            t += n / RATE + rng.uniform(0.04, 0.15)
        t += rng.uniform(0.2, 0.7)
    voiced = np.abs(out) > 1e-3
    if voiced.any():
        out *= 10 ** (level_dbfs / 20) / np.sqrt(np.mean(out[voiced] ** 2))
    return out.astype(np.float32)


def noise(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1000)
    n = round(seconds * RATE)
    return (rng.standard_normal(n) * 10 ** (NOISE_DBFS / 20)).astype(np.float32)


def echo_of(agent: np.ndarray, delay_ms: float, level_db: float, dispersion_ms: float = 0.0):
    """The agent as it comes back: ``delay_ms`` late, ``level_db`` quieter (white-noise gain)
    through a seeded decaying echo path ``dispersion_ms`` long."""
    path = np.ones(1)
    taps = round(dispersion_ms * RATE / 1000)
    if taps > 1:
        rng = np.random.default_rng(5)
        path = rng.standard_normal(taps) * np.exp(-np.arange(taps) / (taps / 3))
        path /= np.sqrt(np.sum(path**2))
    delay = round(delay_ms * RATE / 1000)
    out = np.zeros_like(agent)
    out[delay:] = np.convolve(agent[: len(agent) - delay], path)[: len(agent) - delay]
    return out * np.float32(10 ** (level_db / 20))


def level_dbfs(samples: np.ndarray) -> float:
    power = float(np.mean(samples.astype(np.float64) ** 2))
    return 10 * np.log10(power) if power > 1e-10 else -100.0


def run(
    customer: np.ndarray,
    agent: np.ndarray,
    config: EchoConfig | None = None,
    lost: tuple[float, float] | None = None,
) -> tuple[EchoSuppressor, list[WindowActivity], list[WindowActivity]]:
    """Feed both channels in 20 ms frames (``lost``: a span fed as audio that never
    arrived), judge every customer window as the pipeline does; (suppressor, windows in,
    windows out)."""
    echo = EchoSuppressor(config or EchoConfig())
    n = min(len(customer), len(agent))
    windows_in: list[WindowActivity] = []
    windows_out: list[WindowActivity] = []
    fed = 0
    for start in range(0, n - FRAME + 1, FRAME):
        scored = lost is None or not (lost[0] * RATE <= start < lost[1] * RATE)
        for role, channel in (("customer", customer), ("agent", agent)):
            chunk = channel[start : start + FRAME] if scored else np.zeros(FRAME, np.float32)
            echo.feed(role, chunk, scored)
        fed += FRAME
        while (len(windows_in) + 1) * WINDOW_SAMPLES <= fed:
            k = len(windows_in)
            samples = customer[k * WINDOW_SAMPLES : (k + 1) * WINDOW_SAMPLES]
            dbfs = level_dbfs(samples) if scored else float("nan")
            window = WindowActivity(k, 0.9 if dbfs >= SPEECH_DBFS else 0.05, dbfs)
            windows_in.append(window)
            windows_out.append(echo.judge(window))
    return echo, windows_in, windows_out


def voiced(window: WindowActivity) -> bool:
    return window.speech_probability >= 0.5


def window_levels(signal: np.ndarray, count: int) -> np.ndarray:
    frames = signal[: count * WINDOW_SAMPLES].astype(np.float64).reshape(count, WINDOW_SAMPLES)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


SECONDS = 40.0
AGENT = babble(SECONDS, seed=1)


@pytest.mark.parametrize(
    ("delay_ms", "level_db", "dispersion_ms"),
    [(50, -15, 0), (120, -24, 0), (175, -20, 2), (230, -27, 4), (300, -30, 0), (85, -18, 8)],
)
def test_finds_the_echo_path_and_silences_the_echo(delay_ms, level_db, dispersion_ms):
    customer = noise(SECONDS, 1) + echo_of(AGENT, delay_ms, level_db, dispersion_ms)
    echo, before, after = run(customer, AGENT + noise(SECONDS, 2))
    report = echo.report()
    assert report["detected"]
    assert abs(report["delay_ms"] - delay_ms) <= 2
    # Through a dispersive path the speech-weighted loss differs from the white-noise gain.
    tolerance = 1.0 if dispersion_ms == 0 else 4.0
    assert abs(report["return_loss_db"] + level_db) <= tolerance
    heard = [i for i, w in enumerate(before) if voiced(w)]
    assert len(heard) * WINDOW_S > 10  # the echo alone would be customer speech
    late = [i for i in heard if i * WINDOW_S >= 3.0]  # once the path is known
    leaked = [i for i in late if voiced(after[i])]
    assert len(leaked) <= 0.02 * len(late), [round(i * WINDOW_S, 2) for i in leaked]
    assert report["echo_s"] >= 0.9 * len(late) * WINDOW_S


def test_locks_on_within_about_a_second_of_the_agent_speaking():
    agent = np.concatenate([np.zeros(RATE * 3, np.float32), AGENT[: RATE * 20]])
    customer = noise(23, 1) + echo_of(agent, 140, -22)
    echo, before, after = run(customer, agent + noise(23, 2))
    first_echo = next(i for i, w in enumerate(before) if voiced(w)) * WINDOW_S
    first_silenced = next(i for i, w in enumerate(after) if voiced(before[i]) and not voiced(w))
    assert first_silenced * WINDOW_S - first_echo <= 1.2
    assert echo.report()["detected"]


@pytest.mark.parametrize("customer_dbfs", [-20.0, -26.0, -32.0])
def test_no_echo_is_never_found_and_nothing_is_suppressed(customer_dbfs):
    """Two people talking, often at once, the customer quieter than the agent by 0-12 dB:
    no echo path, and every window passes unchanged."""
    customer = babble(SECONDS, seed=7, level_dbfs=customer_dbfs, talk=0.7) + noise(SECONDS, 1)
    echo, before, after = run(customer, AGENT + noise(SECONDS, 2))
    assert echo.report() == {
        "detected": False,
        "delay_ms": None,
        "return_loss_db": None,
        "echo_s": 0.0,
        "utterances_dropped": 0,
    }
    assert after == before


def test_agent_only_and_customer_only():
    quiet = noise(SECONDS, 3)
    echo, _, after = run(noise(SECONDS, 1), AGENT + noise(SECONDS, 2))  # nobody on the line
    assert not echo.report()["detected"] and not any(voiced(w) for w in after)
    customer = babble(SECONDS, seed=9) + noise(SECONDS, 1)
    echo, before, after = run(customer, quiet)  # the agent never speaks
    assert not echo.report()["detected"]
    assert after == before


def test_double_talk_during_echo_is_the_customer():
    """The echo is there all along; the customer talks over the agent in the middle: their
    own voice is never suppressed where it is well above the echo (by twice the margin: the
    prediction may overshoot the actual echo by a few dB at the agent's word edges), the
    echo around it is."""
    own = np.zeros_like(AGENT)
    own[RATE * 15 : RATE * 25] = babble(10, seed=11, level_dbfs=-24)
    customer = noise(SECONDS, 1) + echo_of(AGENT, 160, -20, 2) + own
    echo, before, after = run(customer, AGENT + noise(SECONDS, 2))
    assert echo.report()["detected"]
    count = len(before)
    own_db = window_levels(own, count)
    echo_db = window_levels(echo_of(AGENT, 160, -20, 2) + noise(SECONDS, 1), count)
    clearly_own = np.flatnonzero(own_db >= echo_db + 12)
    assert len(clearly_own) > 100
    assert all(after[i] == before[i] for i in clearly_own)
    echo_only = [i for i in range(count) if voiced(before[i]) and own_db[i] < -90 and i > 100]
    assert sum(voiced(after[i]) for i in echo_only) <= 0.02 * len(echo_only)


def test_customer_as_loud_as_the_agent_is_not_echo():
    """The agent's line copied onto the customer's at -3 dB (a mixed recording, crosstalk
    of two open lines): below min_return_loss_db, so not an echo path."""
    customer = noise(SECONDS, 1) + echo_of(AGENT, 100, -3)
    echo, before, after = run(customer, AGENT + noise(SECONDS, 2))
    assert not echo.report()["detected"]
    assert after == before


def test_an_echo_that_goes_away_is_forgotten():
    """Echo for 20 s, then the customer's phone stops echoing (the agent talks on): the
    path is dropped, the report keeps the confirmed one."""
    customer = noise(SECONDS, 1) + echo_of(AGENT, 120, -24)
    customer[RATE * 20 :] = noise(SECONDS, 4)[RATE * 20 :]
    echo, _, _ = run(customer, AGENT + noise(SECONDS, 2))
    assert echo.lag is None
    report = echo.report()
    assert report["detected"] and report["delay_ms"] == 120


def test_a_new_delay_replaces_the_old_one():
    first = echo_of(AGENT, 100, -22)
    second = echo_of(AGENT, 250, -22)
    customer = noise(SECONDS, 1) + np.concatenate([first[: RATE * 20], second[RATE * 20 :]])
    echo, _, _ = run(customer, AGENT + noise(SECONDS, 2))
    assert echo.report()["delay_ms"] == 250


def test_lost_audio_is_never_echo():
    customer = noise(SECONDS, 1) + echo_of(AGENT, 120, -24)
    echo, before, after = run(customer, AGENT + noise(SECONDS, 2), lost=(10.0, 12.0))
    lost = [i for i, w in enumerate(before) if np.isnan(w.dbfs)]
    assert len(lost) >= 60
    assert all(after[i] == before[i] for i in lost)
    assert echo.report()["detected"]


def test_skip_to_marks_a_gap():
    customer = noise(20, 1) + echo_of(AGENT[: RATE * 20], 120, -24)
    echo, _, _ = run(customer, AGENT[: RATE * 20] + noise(20, 2))
    assert echo.lag is not None
    gap_end = 937  # windows: about 10 s lost on both channels
    echo.skip_to(gap_end * WINDOW_SAMPLES)
    lost = WindowActivity(gap_end - 1, 0.9, -40.0)
    assert echo.judge(lost) == lost  # nothing heard there can explain it
    assert not echo.utterance_is_echo(20.0, gap_end * WINDOW_S)


def test_speech_cut_before_the_path_was_known_is_judged_again():
    """The first echo gets through before the path is known; once it is, that stretch,
    judged again, was the echo."""
    agent = AGENT[: RATE * 6]
    echo, before, after = run(noise(6, 1) + echo_of(agent, 120, -24), agent + noise(6, 2))
    assert echo.lag is not None
    first = next(i for i, w in enumerate(before) if voiced(w))
    leaked = [i for i in range(len(after)) if voiced(after[i])]
    assert leaked and leaked[0] == first  # it got through at first
    start_s, end_s = first * WINDOW_S - 0.3, (leaked[-1] + 1) * WINDOW_S + 0.15  # with rolls
    assert echo.utterance_is_echo(max(0.0, start_s), end_s)


def test_recent_utterances_are_judged_with_the_path():
    own = np.zeros_like(AGENT)
    own[RATE * 30 : RATE * 33] = babble(3, seed=12, level_dbfs=-22)
    customer = noise(SECONDS, 1) + echo_of(AGENT, 120, -24) + own
    echo, _, _ = run(customer, AGENT + noise(SECONDS, 2))
    assert echo.utterance_is_echo(34.0, 36.0)  # echo only
    assert not echo.utterance_is_echo(29.8, 33.2)  # the customer's own words
    assert not echo.utterance_is_echo(0.0, 2.0)  # longer ago than the history: not judged


class _EnergyVad:
    """A stand-in ``VadScorer``: speech when the window is louder than -50 dBFS."""

    def run(self, window: np.ndarray, state: np.ndarray) -> tuple[float, np.ndarray]:
        return (0.9 if level_dbfs(window[32:]) >= SPEECH_DBFS else 0.05), state


def _pipeline_call(
    customer: np.ndarray, agent: np.ndarray, enabled: bool, customer_on_agent: bool = True
) -> tuple[CallPipeline, list]:
    settings = Settings(echo={"enabled": enabled, "customer_on_agent": customer_on_agent})
    spec = CallSpec("echo-call", "agent-1", RATE, "pcm16", ("customer", "agent"))
    pipeline = CallPipeline(settings, _EnergyVad(), spec, asr=True)
    stereo = np.stack([customer, agent], axis=1)
    utterances = []
    for start in range(0, len(stereo), FRAME):
        frame = np.round(stereo[start : start + FRAME] * 32768).clip(-32768, 32767)
        utterances += pipeline.feed_audio(frame.astype("<i2").tobytes()).utterances
    utterances += pipeline.finish().utterances
    return pipeline, utterances


def _silenced(
    pipeline: CallPipeline, utterances: list, heard_on: str, key: str, delay_ms: float
) -> dict:
    """The scorecard's metrics, once checked: (almost) no talk time and no overlap on the
    ``heard_on`` channel, no final utterance of it, and the echo path in ``metrics[key]``."""
    metrics = pipeline.scorecard()["metrics"]
    assert metrics["talk_s"][heard_on] <= 1.5
    assert metrics["overlap_s"] <= 1.5
    assert not [u for u in utterances if u.channel == heard_on and u.final]
    assert metrics[key]["detected"] and metrics[key]["delay_ms"] == delay_ms
    return metrics


def test_pipeline_echo_is_no_customer_speech_nor_utterance():
    """Through ``CallPipeline``: with the echo suppressor, an agent monologue echoed on the
    customer line leaves (almost) no customer talk time, no overlap and no customer
    utterance to transcribe; without it, the echo is a second speaker."""
    agent = AGENT + noise(SECONDS, 2)
    customer = noise(SECONDS, 1) + echo_of(AGENT, 120, -24)
    metrics = _silenced(*_pipeline_call(customer, agent, enabled=True), "customer", "echo", 120)
    assert metrics["echo"]["utterances_dropped"] >= 1  # cut before the path was known
    pipeline, utterances = _pipeline_call(customer, agent, enabled=False)
    metrics = pipeline.scorecard()["metrics"]
    assert metrics["talk_s"]["customer"] > 20
    assert "echo" not in metrics
    assert [u for u in utterances if u.channel == "customer" and u.final]


def test_pipeline_customer_echo_on_the_agent_line_is_no_agent_speech():
    """The other way round (the customer's voice leaking into the agent's microphone): a
    customer monologue echoed on the agent line leaves (almost) no agent talk time, no
    overlap and no agent utterance, and the path is in ``echo_on_agent``; without that
    suppressor the echo is the agent talking over the customer the whole time."""
    customer = AGENT + noise(SECONDS, 1)  # the same speech, now the customer's
    agent = noise(SECONDS, 2) + echo_of(AGENT, 70, -20)
    call = _pipeline_call(customer, agent, enabled=True)
    metrics = _silenced(*call, "agent", "echo_on_agent", 70)
    assert abs(metrics["echo_on_agent"]["return_loss_db"] - 20) <= 1.0
    assert metrics["echo"]["detected"] is False  # nothing of the agent on the customer line
    pipeline, utterances = _pipeline_call(customer, agent, enabled=True, customer_on_agent=False)
    metrics = pipeline.scorecard()["metrics"]
    assert "echo_on_agent" not in metrics
    assert metrics["talk_s"]["agent"] > 20 and metrics["overlap_s"] > 20
    assert [u for u in utterances if u.channel == "agent" and u.final]


def test_an_echo_suppressor_needs_two_channels():
    with pytest.raises(ValueError, match="own channel"):
        EchoSuppressor(EchoConfig(), heard_on="agent", source="agent")


def test_pipeline_without_echo_is_unchanged():
    """Two people taking turns and talking over each other, no echo: the suppressor changes
    nothing (same talk times, overlaps and utterances as without it)."""
    agent = AGENT + noise(SECONDS, 2)
    customer = babble(SECONDS, seed=7, level_dbfs=-24, talk=0.6) + noise(SECONDS, 1)
    with_echo, kept = _pipeline_call(customer, agent, enabled=True)
    without, plain = _pipeline_call(customer, agent, enabled=False)
    metrics = with_echo.scorecard()["metrics"]
    assert metrics.pop("echo")["detected"] is False
    assert metrics.pop("echo_on_agent")["detected"] is False
    assert metrics == without.scorecard()["metrics"]
    assert [(u.channel, u.start_s, u.end_s) for u in kept] == [
        (u.channel, u.start_s, u.end_s) for u in plain
    ]


def test_one_channel_calls_have_no_echo_suppressor():
    spec = CallSpec("mono", "agent-1", RATE, "pcm16", ("customer",))
    pipeline = CallPipeline(Settings(), _EnergyVad(), spec)
    pipeline.feed_audio(np.zeros(FRAME, "<i2").tobytes())
    assert "echo" not in pipeline.scorecard()["metrics"]


def test_synthesized_calls_can_echo_the_agent():
    """``[echo]`` in a call script mixes the agent's line onto the customer's, that late and
    that much quieter (what the end-to-end tests stream)."""
    import shutil

    from assist.synth.render import render
    from assist.synth.script import CallScript, Echo

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    script = CallScript(
        duration_s=4.0,
        say=[{"who": "agent", "at": 0.2, "text": "Thank you for calling."}],
        echo=Echo(delay_ms=100.0, level_db=-20.0),
    )
    echoed = render(script).audio
    plain = render(script.model_copy(update={"echo": None})).audio
    delay = 800  # samples at 8 kHz
    assert np.array_equal(echoed[:, 1], plain[:, 1])
    leaked = echoed[:, 0] - plain[:, 0]
    assert np.allclose(leaked[:delay], 0.0)
    assert np.allclose(leaked[delay:], plain[:-delay, 1] * 0.1, atol=1e-6)


@pytest.mark.parametrize(("partial_is_echo", "kept"), [(False, 2), (True, 0)])
def test_echo_free_segmenter_never_leaves_a_partial_without_its_final(
    monkeypatch, partial_is_echo, kept
):
    """An utterance judged echo is not transcribed; but once a partial of it went out (the
    path was not known yet), its final goes out too, to replace it on the agent's page."""
    from assist.asr.segmenter import ChannelAudio
    from assist.config import UtteranceConfig
    from assist.echo import EchoFreeSegmenter
    from assist.vad.gate import SpeechEdge

    echo = EchoSuppressor(EchoConfig())
    verdicts = iter([partial_is_echo, True])
    monkeypatch.setattr(echo, "utterance_is_echo", lambda start_s, end_s: next(verdicts))
    audio = ChannelAudio(20.0)
    audio.append(np.zeros(16000 * 5, dtype=np.float32))
    segmenter = EchoFreeSegmenter(UtteranceConfig(), "customer", audio, echo)
    out = []
    for k in range(140):  # 4.48 s of windows: speech from 0.5 s to 3.0 s
        t_s = (k + 1) * WINDOW_S
        edge = SpeechEdge(True, 0.5) if k == 16 else SpeechEdge(False, 3.0) if k == 94 else None
        out += segmenter.feed(edge, t_s)
    assert [u.final for u in out] == [False, True][:kept]
    assert echo.utterances_dropped == (0 if kept else 1)
