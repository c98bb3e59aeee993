"""The agent's voice echoed on the customer channel: find the echo path, and keep the echo
from counting as the customer.

On many VoIP legs the agent's own voice comes back on the customer channel, delayed (tens
to hundreds of milliseconds) and attenuated by the echo return loss (ERL, typically
15-30 dB). Left alone, the echo is "customer speech": overlaps, customer turns that hide
a monologue, customer transcripts of the agent's words and text cues on them. The
customer's voice can leak into the agent's microphone the same way (a loud headset, a
speakerphone at the desk), and then it is the agent talking over the customer; a call
runs one ``EchoSuppressor`` each way (``heard_on`` / ``source``), and below "customer"
means the channel that carries the echo, "agent" the one whose voice it is.

How (pure numpy, fed both channels' 8 kHz samples, one decision per 32 ms window):

* **Envelopes.** Each channel is cut into 4 ms sub-frames; their powers are kept for the
  last ``HISTORY_S`` seconds (lost audio: NaN, never echo and never evidence).
* **Finding the echo path.** Every ``SEARCH_WINDOWS`` windows while no path is known
  (``UPDATE_WINDOWS`` once one is), the customer's amplitude envelope over the last
  ``ANALYSIS_S`` (8 ms smoothing removes the voice's pitch ripple) is correlated
  (Pearson) with the agent's at every delay from 0 to ``max_delay_ms``; the peak is
  interpolated to a fraction of a sub-frame. The span starts after the last customer
  sound that no agent speech at any delay could have caused (the customer's own turn).
  The peak is an observation when the agent spoke ``MIN_AGENT_ACTIVE_S`` of the span, the
  correlation reaches ``min_correlation`` inside the search range, the customer channel is
  at least ``min_return_loss_db`` quieter than the agent (the path gain is the median,
  window by window, of the customer's power above its noise floor over the delayed
  agent's), and window by window the path explains what was heard: of at least
  ``MIN_AUDIBLE_WINDOWS`` windows where it predicts a clearly audible echo,
  ``MIN_MATCHING_SHARE`` are within ``double_talk_margin_db`` of the prediction (or, with
  ``LONG_EVIDENCE_WINDOWS``, ``LONG_MATCHING_SHARE`` within the margin above and twice it
  below: an echo path colours the echo). Double-talk spans are simply not observations.
  The first observation sets the path; a different delay needs two in a row; the same
  delay refreshes the return loss.
* **Per window.** The predicted echo of a customer window is the path gain times the
  agent's power over the same window one delay earlier (and ``TAIL_GAIN`` of it for delays
  up to ``TAIL_SUBS`` sub-frames longer: the echo's tail). A window is echo when that is above
  the customer's noise floor and the window's power is at most ``double_talk_margin_db``
  above predicted echo + noise: its speech probability becomes 0, so the voice gate, the
  conversation, the detectors and the utterance segmenter never hear it. Louder windows
  (the customer's own voice, double-talk included) pass unchanged, and so does every
  window while the agent is silent.
* **Verifying.** An echo is always there when the agent speaks, under the customer's own
  voice too: windows far below a clearly audible prediction (``ABSENT_DB``) are missing
  echo. More than ``MAX_MISSING_SHARE`` of them (moving average over ``forget_after_s`` of
  audible prediction) drops the path (a chance match with the customer's own voice, or an
  echo that went away), and so does reaching that horizon without an observation of newer
  audio finding the path again; a path that held that long and was found again is
  confirmed: ``detected``, with its delay and return loss, in the scorecard.
* **Utterances cut before the path was known** (the first words of a call) are judged
  again when they end: an utterance whose voiced windows are nearly all echo
  (``ECHO_UTTERANCE_SHARE``, with at most ``MAX_UNEXPLAINED_S`` of the customer's own
  voice) is dropped before transcription (``EchoFreeSegmenter``).

Units: powers are mean squares of float samples (full scale 1.0); ``_db`` ratios in dB.
Cost: about 20 µs per 32 ms window on one core, observations included (``bench/micro.py``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from assist.asr.segmenter import ChannelAudio, UtteranceSegmenter
from assist.config import EchoConfig, UtteranceConfig
from assist.vad.gate import SpeechEdge
from assist.vocabulary import VAD_RATE, WINDOW_S, WINDOW_SAMPLES, UtteranceAudio, WindowActivity

SUB_SAMPLES = 32  # one envelope sub-frame: 4 ms at 8 kHz
SUBS_PER_WINDOW = WINDOW_SAMPLES // SUB_SAMPLES  # 8
SUB_S = SUB_SAMPLES / VAD_RATE
MAX_PENDING_SAMPLES = 4 * WINDOW_SAMPLES  # fed samples are cut into sub-frames by then
HISTORY_S = 8.0  # sub-frame powers kept per channel
ANALYSIS_S = 1.5  # span of one echo-path observation (at most) ...
MIN_SPAN_S = 0.5  # ... and at least
MIN_AGENT_ACTIVE_S = 0.3  # agent speech needed in that span
AGENT_ACTIVE_DBFS = -50.0  # an agent sub-frame at least this loud is active
UPDATE_WINDOWS = 16  # windows between observations while an echo path is known (0.5 s)
SEARCH_WINDOWS = 4  # ... and while none is (0.128 s: lock on fast at a call's start)
NOISE_RISE_DB_PER_S = 1.0  # the customer noise floor follows the minimum, rises this fast
TAIL_SUBS = 4  # an echo's tail: up to 16 ms past the path's delay ...
TAIL_GAIN = 0.1  # ... 10 dB down (a short hybrid's echo has next to none)
ABSENT_DB = 10.0  # customer this far below a clearly audible predicted echo: echo missing
# Share of missing windows that drops a path. Measured: a true echo path misses 0-5 % of
# windows (the echo path colours the echo), a chance match with the customer's own voice
# about 40 %. A new path starts from MISSING_PRIOR.
MAX_MISSING_SHARE = 0.2
MISSING_PRIOR = 0.1
# Predicted echo this far above the noise floor is clearly audible (10 dB missed the echo
# on a line hissing at -45 dBFS: 3 dB above the hiss on average, few windows reach 10;
# bench/line_conditions.py)
AUDIBLE_ECHO_DB = 6.0
MIN_AUDIBLE_WINDOWS = 12  # an observation needs this many windows of clearly audible echo ...
MIN_MATCHING_SHARE = 0.9  # ... and this share of them within the margin of the prediction
LONG_EVIDENCE_WINDOWS = 20  # or, with this many, LONG_MATCHING_SHARE within twice the
LONG_MATCHING_SHARE = 0.95  # margin below the prediction and the margin above
ECHO_UTTERANCE_SHARE = 0.8  # voiced windows explained by echo for an utterance to be echo
MAX_UNEXPLAINED_S = 0.25  # ... and at most this much of the customer's own voice in it
_TINY = 1e-12
_WINDOW_SUM = np.ones(SUBS_PER_WINDOW)


def _db(ratio: float) -> float:
    return 10.0 * math.log10(max(ratio, _TINY))


class _Envelope:
    """One channel's sub-frame powers by absolute sub-frame number, the last ``capacity``
    kept. Stored twice over (at i and i + capacity) so any kept span is one slice."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._powers = np.zeros(2 * capacity, dtype=np.float64)
        # Samples fed but not yet cut into sub-frames (cut in bulk by ``flush``: one numpy
        # pass per window, not per frame); NaN stands for audio that never arrived.
        self._pending: list[np.ndarray] = []
        self._pending_n = 0
        self.count = 0  # sub-frames written

    def feed(self, samples: np.ndarray, scored: bool) -> None:
        if not scored:
            samples = np.full(len(samples), np.nan, dtype=np.float32)
        self._pending.append(samples)
        self._pending_n += len(samples)
        if self._pending_n >= MAX_PENDING_SAMPLES:
            self.flush()

    def flush(self) -> None:
        """Cut the samples fed so far into sub-frames (the last unfinished one waits)."""
        n = self._pending_n // SUB_SAMPLES
        if n == 0:
            return
        pending = self._pending
        samples = pending[0] if len(pending) == 1 else np.concatenate(pending)
        frames = samples[: n * SUB_SAMPLES].reshape(n, SUB_SAMPLES)
        self._write(np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / SUB_SAMPLES)
        self._pending = [samples[n * SUB_SAMPLES :]]
        self._pending_n -= n * SUB_SAMPLES

    def skip_to(self, position: int) -> None:
        """Samples lost up to absolute 8 kHz sample ``position``: the sub-frames they touch
        are NaN (at most the history's worth is written: O(1) in the gap), the unfinished
        one at ``position`` starts with silence."""
        self.flush()
        end = position // SUB_SAMPLES
        lost = end - self.count
        if lost > 0:
            if lost > self.capacity:
                self.count = end - self.capacity
            self._write(np.full(min(lost, self.capacity), np.nan))
        self._pending = [np.zeros(position - end * SUB_SAMPLES, dtype=np.float32)]
        self._pending_n = len(self._pending[0])

    def _write(self, powers: np.ndarray) -> None:
        cap = self.capacity
        if len(powers) >= cap:
            self.count += len(powers) - cap
            powers = powers[-cap:]
        start = self.count % cap
        first = min(len(powers), cap - start)
        for offset in (0, cap):
            self._powers[offset + start : offset + start + first] = powers[:first]
            rest = len(powers) - first
            if rest:
                self._powers[offset : offset + rest] = powers[first:]
        self.count += len(powers)

    def span(self, start: int, end: int) -> np.ndarray:
        """Powers of sub-frames [start, end) (a view); before the call: 0; longer ago than
        the history or not yet written: ``ValueError``."""
        if end > self.count or end - max(start, 0) > self.capacity or start > end:
            raise ValueError(f"sub-frames [{start}, {end}) not in the history")
        if start < 0:
            return np.concatenate((np.zeros(-start), self.span(0, end)))
        if self.count - start > self.capacity:
            raise ValueError(f"sub-frames [{start}, {end}) not in the history")
        i = start % self.capacity
        return self._powers[i : i + end - start]


class EchoSuppressor:
    """Finds the agent's echo on the customer channel and takes it out of the customer's
    voice activity (module docstring). Pure: ``feed`` each channel's 8 kHz samples as they
    come (the same samples the VAD windows, so window ``k`` is samples
    ``[256k, 256k + 256)``), then ``judge`` each customer window once both channels have
    it; ``report`` for the scorecard.

    ``speech_probability``: a window at or above it counts as heard speech (the voice
    gate's onset). ``heard_on`` / ``source``: the channel that carries the echo and the
    one whose voice it is. The docstrings say "customer" and "agent" for the usual way
    round; the other (the customer's voice leaking into the agent's microphone from a
    loud headset or a speakerphone) is the same physics, so a call has one each way.
    """

    def __init__(
        self,
        config: EchoConfig,
        speech_probability: float = 0.5,
        heard_on: str = "customer",
        source: str = "agent",
    ) -> None:
        if heard_on == source:
            raise ValueError(f"an echo of {source} on its own channel")
        self.heard_on = heard_on
        self.source = source
        self._cfg = config
        self._speech_probability = speech_probability
        capacity = round(HISTORY_S / SUB_S)
        self._max_lag = max(1, round(config.max_delay_ms / 1000 / SUB_S))
        self._span = round(ANALYSIS_S / SUB_S)
        if self._span + self._max_lag + SUBS_PER_WINDOW > capacity:
            raise ValueError(f"max_delay_ms {config.max_delay_ms} too long for the history")
        self._echoed = _Envelope(capacity)
        self._source = _Envelope(capacity)
        self._margin = 10 ** (config.double_talk_margin_db / 10)
        self._max_gain = 10 ** (-config.min_return_loss_db / 10)
        self._source_active = 10 ** (AGENT_ACTIVE_DBFS / 10)
        self._min_active = round(MIN_AGENT_ACTIVE_S / SUB_S)
        self._min_span = round(MIN_SPAN_S / SUB_S)
        self._noise_rise = 10 ** (NOISE_RISE_DB_PER_S * WINDOW_S / 10)
        self._verify_windows = math.ceil(config.forget_after_s / WINDOW_S)
        self.noise: float | None = None  # customer noise floor (power)
        self.lag: float | None = None  # echo path delay in sub-frames; None: no echo path
        self.gain = 0.0  # echo path power gain (customer / agent)
        self.correlation = 0.0  # of the last observation that set or refreshed the path
        self.detected = False  # an echo path was confirmed at some point of the call
        self.last_delay_ms: float | None = None  # the confirmed path last known (kept after)
        self.last_return_loss_db: float | None = None
        self.echo_s = 0.0  # customer windows heard as speech that were judged echo
        self.utterances_dropped = 0
        self._pending_lag: float | None = None
        self._missing = 0.0  # moving share of windows missing the predicted echo
        self._held = 0  # windows of clearly audible predicted echo since the path was set
        self._confirmed = False  # the path held that long (verified)
        self._found_at = 0  # sub-frame where the observation that set the path ended
        self._seen_again = False  # an observation of newer audio found the path again
        self._since_update = 0
        # Per customer window, for judging utterances again: heard as speech, and power.
        windows = capacity // SUBS_PER_WINDOW
        self._heard = np.zeros(windows, dtype=bool)
        self._window_power = np.full(windows, np.nan)
        self._judged = 0  # customer windows judged so far

    @property
    def delay_ms(self) -> float | None:
        """The echo path's delay now, ms; None without one."""
        return None if self.lag is None else self.lag * SUB_S * 1000

    @property
    def return_loss_db(self) -> float | None:
        """The echo return loss now (agent level minus echo level), dB; None without a path."""
        return None if self.lag is None else -_db(self.gain)

    def feed(self, role: str, samples: np.ndarray, scored: bool = True) -> None:
        """The next 8 kHz samples of ``role`` (``heard_on`` or ``source``; others are ignored);
        ``scored=False``: audio that never arrived (zeros standing in for it)."""
        if role == self.heard_on:
            self._echoed.feed(samples, scored)
        elif role == self.source:
            self._source.feed(samples, scored)

    def skip_to(self, position: int) -> None:
        """Audio lost on both channels up to absolute 8 kHz sample ``position`` (a gap): their
        envelopes say so (NaN: never echo, never an observation), in O(1)."""
        self._echoed.skip_to(position)
        self._source.skip_to(position)
        self._heard[:] = False  # the lost windows were never heard: none is judged again

    def judge(self, window: WindowActivity) -> WindowActivity:
        """The customer's window as the rest of the call should see it: speech probability 0
        when its sound is the agent's echo, else unchanged. Both channels' samples up to the
        window's end must have been fed."""
        k = window.index
        end = (k + 1) * SUBS_PER_WINDOW
        self._echoed.flush()
        self._source.flush()
        power = float(self._echoed.span(end - SUBS_PER_WINDOW, end).sum()) / SUBS_PER_WINDOW
        self._follow_noise(power)
        self._since_update += 1
        if self._since_update >= (SEARCH_WINDOWS if self.lag is None else UPDATE_WINDOWS):
            self._since_update = 0
            self._observe(end)
        heard = window.speech_probability >= self._speech_probability
        slot = k % len(self._heard)
        self._heard[slot] = heard
        self._window_power[slot] = power
        self._judged = k + 1
        if self.lag is None:
            return window
        predicted = self._predicted(end)
        echo = self._explained(power, predicted)
        self._verify(power, predicted)
        if not echo or window.speech_probability == 0.0:
            return window
        if heard:
            self.echo_s += WINDOW_S
        return WindowActivity(window.index, 0.0, window.dbfs)

    def utterance_is_echo(self, start_s: float, end_s: float) -> bool:
        """Whether the customer's speech in [start_s, end_s) (media s) was the echo, judged
        with the echo path known now: at least ``ECHO_UTTERANCE_SHARE`` of its windows heard
        as speech are explained by the echo, and at most ``MAX_UNEXPLAINED_S`` are not."""
        if self.lag is None or self.noise is None:
            return False
        first = max(0, math.floor(start_s / WINDOW_S + 1e-9))
        last = math.ceil(end_s / WINDOW_S - 1e-9)  # exclusive
        latest = self._judged
        # Windows still in both histories: ours, and the agent's sub-frames one delay earlier.
        source = self._source
        agent_from = source.count - source.capacity + math.ceil(self.lag) + TAIL_SUBS + 1
        oldest = max(latest - len(self._heard), -(-agent_from // SUBS_PER_WINDOW) + 1)
        heard = explained = 0
        for k in range(max(first, oldest), min(last, latest)):
            slot = k % len(self._heard)
            if not self._heard[slot]:
                continue
            heard += 1
            end = (k + 1) * SUBS_PER_WINDOW
            explained += self._explained(float(self._window_power[slot]), self._predicted(end))
        unexplained_s = (heard - explained) * WINDOW_S
        return (
            heard > 0
            and explained >= ECHO_UTTERANCE_SHARE * heard
            and (unexplained_s <= MAX_UNEXPLAINED_S)
        )

    def report(self) -> dict[str, Any]:
        """The scorecard's ``echo`` metrics: ``detected`` (an echo path confirmed, or held now
        and found again on newer audio), its ``delay_ms`` and ``return_loss_db`` (the path
        held now, else the last confirmed one; None without), ``echo_s`` (seconds of
        customer audio heard as speech that were echo) and ``utterances_dropped`` (customer
        utterances cut before the path was known, judged echo and not transcribed)."""
        delay_ms, return_loss_db = self.delay_ms, self.return_loss_db
        if delay_ms is None:
            delay_ms, return_loss_db = self.last_delay_ms, self.last_return_loss_db
        return {
            "detected": self.detected or (self.lag is not None and self._seen_again),
            "delay_ms": None if delay_ms is None else round(delay_ms),
            "return_loss_db": None if return_loss_db is None else round(return_loss_db, 1),
            "echo_s": round(self.echo_s, 2),
            "utterances_dropped": self.utterances_dropped,
        }

    # -- internals -------------------------------------------------------------------

    def _follow_noise(self, power: float) -> None:
        if math.isnan(power):
            return
        if self.noise is None or power < self.noise:
            self.noise = max(power, _TINY)
        else:
            self.noise *= self._noise_rise

    def _predicted(self, end: int) -> float:
        """Echo power predicted for the customer window ending at sub-frame ``end``: the
        path gain times the agent's power over the same window one delay earlier (the
        larger of the two whole sub-frame delays around it), or, if larger, ``TAIL_GAIN``
        times that for delays up to ``TAIL_SUBS`` sub-frames longer (an echo path smears
        the echo: the window after the agent stops still holds its tail)."""
        assert self.lag is not None
        shortest = math.floor(self.lag)
        longest = shortest + 1 + TAIL_SUBS
        agent = self._source.span(end - SUBS_PER_WINDOW - longest, end - shortest)
        # Each delay's window, summed: [-1] the shortest delay, [-2] one sub-frame longer.
        windows = np.convolve(agent, _WINDOW_SUM, "valid")
        power = max(float(windows[-2:].max()), TAIL_GAIN * float(windows[:-2].max()))
        return self.gain * power / SUBS_PER_WINDOW

    def _explained(self, power: float, predicted: float) -> bool:
        noise = self.noise or _TINY
        # NaN (lost audio on either side) compares false: never echo.
        return predicted >= noise and power <= self._margin * (predicted + noise)

    def _verify(self, power: float, predicted: float) -> None:
        """Check the echo path on one window: where it predicts a clearly audible echo, a
        customer window far below the prediction means the echo is missing (an echo is
        always there, under the customer's own voice too). A share of missing windows above
        ``MAX_MISSING_SHARE`` (moving average over ``forget_after_s`` of such windows) drops
        the path, and so does that long without an observation on new audio finding it
        again; a path that held that long and was found again is confirmed."""
        noise = self.noise or _TINY
        if not predicted >= noise * 10 ** (AUDIBLE_ECHO_DB / 10):
            return
        missing = power < predicted * 10 ** (-ABSENT_DB / 10)
        self._missing += (missing - self._missing) / self._verify_windows
        self._held += 1
        if self._missing > MAX_MISSING_SHARE or (
            self._held >= self._verify_windows and not self._seen_again
        ):
            self.lag = None  # missing too often, or never found again on new audio
            self._pending_lag = None
        elif self._held >= self._verify_windows and not self._confirmed:
            self._confirmed = self.detected = True
            self._record()

    def _observe(self, end: int) -> None:
        """One echo-path observation over the sub-frames before ``end``."""
        span = min(self._span, end)
        if span < self._min_span:
            return
        customer = self._echoed.span(end - span, end)
        agent = self._source.span(end - span - self._max_lag, end)
        if np.isnan(customer).any() or np.isnan(agent).any():
            return  # lost audio in the span
        noise = self.noise or _TINY
        # Customer sound while the agent was silent at every possible delay is not echo but
        # the customer's own turn: observe only what follows the last of it. (agent[t ..
        # t + max_lag] is what could echo into customer[t].)
        active = np.concatenate(([0], np.cumsum(agent >= self._source_active)))
        if active[-1] < self._min_active:
            return  # the agent hardly spoke
        audible = customer >= noise * 10 ** (AUDIBLE_ECHO_DB / 10)
        own = np.flatnonzero(audible & (active[self._max_lag + 1 :] == active[:span]))
        if len(own):
            start = int(own[-1]) + 1
            span -= start
            if span < self._min_span:
                return
            customer, agent, audible = customer[start:], agent[start:], audible[start:]
        if np.count_nonzero(audible) < MIN_AUDIBLE_WINDOWS * SUBS_PER_WINDOW // 2:
            return  # hardly anything to hear on the customer channel: no echo to find
        lag, correlation = _best_lag(_smoothed(customer), _smoothed(agent), self._max_lag)
        if correlation < self._cfg.min_correlation or lag >= self._max_lag:
            return  # no echo, or a peak at the edge of the search: the true one lies beyond
        whole = round(lag)
        delayed = agent[self._max_lag - whole : self._max_lag - whole + span]
        # Judged window by window (32 ms, ending at `end`), as the customer's windows are.
        usable = span - span % SUBS_PER_WINDOW
        heard = customer[span - usable :].reshape(-1, SUBS_PER_WINDOW).mean(axis=1)
        source = delayed[span - usable :].reshape(-1, SUBS_PER_WINDOW).mean(axis=1)
        active = source >= self._source_active
        if np.count_nonzero(active) * SUBS_PER_WINDOW < self._min_active:
            return
        gain = _median(np.maximum(heard[active] - noise, 0.0) / source[active])
        if not 0.0 < gain <= self._max_gain:
            return  # silent, or as loud as the agent: not an echo
        # Where the path predicts a clearly audible echo, the customer channel must match it
        # window by window: unrelated speech whose envelope happens to correlate doesn't
        # (measured: at most 80 % of such windows within 6 dB; echo 95 % and more).
        predicted = gain * source
        audible = predicted >= noise * 10 ** (AUDIBLE_ECHO_DB / 10)
        if np.count_nonzero(audible) < MIN_AUDIBLE_WINDOWS:
            return
        ratio = heard[audible] / (predicted[audible] + noise)
        n = len(ratio)
        within = np.count_nonzero((ratio <= self._margin) & (ratio >= 1 / self._margin))
        if within < MIN_MATCHING_SHARE * n:
            # An echo path colours the echo (a fricative may come back 10 dB weaker than a
            # vowel): with more evidence, windows well below the prediction may pass too.
            below = np.count_nonzero((ratio <= self._margin) & (ratio >= self._margin**-2))
            if n < LONG_EVIDENCE_WINDOWS or below < LONG_MATCHING_SHARE * n:
                return
        self._accept(lag, gain, correlation, end - span, end)

    def _accept(self, lag: float, gain: float, correlation: float, first: int, end: int) -> None:
        """An observation of a path at ``lag`` over sub-frames [first, end)."""
        same = self.lag is not None and abs(lag - self.lag) <= 1
        seen = self._pending_lag is not None and abs(lag - self._pending_lag) <= 1
        if self.lag is not None and not same and not seen:
            self._pending_lag = lag
            return  # a different delay: wait for a second observation of it
        if same:
            gain = math.sqrt(gain * self.gain)  # smooth the return loss (mean in dB)
            self._seen_again |= first >= self._found_at  # on audio the first one never saw
        else:  # a new path: verified from scratch
            self._missing = MISSING_PRIOR
            self._held = 0
            self._confirmed = self._seen_again = False
            self._found_at = end
        self.lag, self.gain, self.correlation = lag, gain, correlation
        self._pending_lag = None
        if self._confirmed:
            self._record()

    def _record(self) -> None:
        self.last_delay_ms = self.delay_ms
        self.last_return_loss_db = self.return_loss_db


def _median(values: np.ndarray) -> float:
    """The upper median (np.median's sort is slow on short arrays)."""
    middle = len(values) // 2
    return float(np.partition(values, middle)[middle])


def _smoothed(powers: np.ndarray) -> np.ndarray:
    """Amplitude envelope of sub-frame powers, averaged over pairs of sub-frames (8 ms):
    removes the voice's pitch ripple, which would make the correlation peak jump by a
    pitch period when the delay is not a whole number of sub-frames."""
    amplitude = np.sqrt(powers)
    return 0.5 * (amplitude[1:] + amplitude[:-1])


def _best_lag(customer: np.ndarray, agent: np.ndarray, max_lag: int) -> tuple[float, float]:
    """The delay (sub-frames, 0..max_lag, fractional: parabolic peak interpolation) at
    which ``agent`` best explains ``customer``, and the Pearson correlation there.
    ``customer`` has N values; ``agent`` N + max_lag, the first max_lag before the
    customer's span."""
    n = len(customer)
    centred = customer - customer.mean()
    norm = float(np.sqrt(np.dot(centred, centred)))
    if norm <= _TINY:
        return 0, 0.0
    # cross[j] = sum_t agent[j + t] * centred[t]: agent shifted by lag max_lag - j (direct:
    # faster than FFTs at these sizes, a few hundred values by a few hundred lags).
    cross = np.correlate(agent, centred, "valid")
    sums = np.cumsum(agent)
    squares = np.cumsum(agent * agent)
    # Sums over agent[j : j + n] for every j (the first from index -1: 0).
    total = sums[n - 1 :] - np.concatenate(([0.0], sums[:max_lag]))
    total_sq = squares[n - 1 :] - np.concatenate(([0.0], squares[:max_lag]))
    variance = np.maximum(total_sq - total * total / n, 0.0)
    correlation = cross / (norm * np.sqrt(variance) + _TINY)
    best = int(np.argmax(correlation))
    offset = 0.0
    if 0 < best < max_lag:
        left, peak, right = correlation[best - 1 : best + 2]
        curvature = left - 2 * peak + right
        if curvature < 0:
            offset = 0.5 * (left - right) / curvature
    return max_lag - best - offset, float(correlation[best])


class EchoFreeSegmenter(UtteranceSegmenter):
    """The utterance segmenter of the channel an ``EchoSuppressor`` watches (the customer's,
    or the agent's for the customer's echo), minus utterances that were the other's echo
    (``EchoSuppressor.utterance_is_echo``: speech cut before the echo path was known). The
    final of an utterance whose partial was kept is kept too (never a partial without its
    final on the agent's page)."""

    def __init__(
        self,
        config: UtteranceConfig,
        channel: str,
        audio: ChannelAudio,
        echo: EchoSuppressor,
    ) -> None:
        super().__init__(config, channel, audio)
        self._echo = echo
        self._previewed = -1  # id of the last utterance a partial of which was kept

    def feed(self, edge: SpeechEdge | None, t_s: float) -> list[UtteranceAudio]:
        """As ``UtteranceSegmenter.feed``, echo utterances left out."""
        return self._keep(super().feed(edge, t_s))

    def close(self, t_s: float) -> list[UtteranceAudio]:
        """As ``UtteranceSegmenter.close``, echo utterances left out."""
        return self._keep(super().close(t_s))

    def _keep(self, utterances: list[UtteranceAudio]) -> list[UtteranceAudio]:
        kept = []
        for utterance in utterances:
            # A final whose partial went out is kept: its text replaces the partial's.
            previewed = utterance.final and utterance.utterance_id == self._previewed
            if not previewed and self._echo.utterance_is_echo(utterance.start_s, utterance.end_s):
                self._echo.utterances_dropped += utterance.final
                continue
            if not utterance.final:
                self._previewed = utterance.utterance_id
            kept.append(utterance)
        return kept
