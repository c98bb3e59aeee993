"""The faster-whisper recognizer behind the ASR pool, with an encoder window that fits.

Whisper's encoder takes 30 s of audio; faster-whisper pads every utterance to that, so a
3 s utterance costs as much as a 30 s one. Here each recognition step encodes a shorter
window: the longest utterance in the step plus ``WINDOW_MARGIN_S``, at least
``window_floor_s`` (``[asr] window_floor_s``), rounded up to whole seconds, at most 30 s.
The decoder still sees Whisper's 30 s geometry: the short window's encoder output is
followed by the encoding of silence up to 1500 positions (the silence tail,
``assist/asr/model.py``; ``[asr] silence_tail``), which keeps the words the bare short
window mishears ("caller" as "color") and keeps short windows from repeating themselves.
Without the tail, stock Whisper models (trained on 30 s windows only) start to repeat
themselves in very short windows (the same sentence twice or more). So every windowed
result goes through a guard (``full_window_reason``): repeated text (a 4-word sequence
said again, or a zlib compression ratio over 2.4, Whisper's own limit), a final of a short utterance
with no word at all (a backchannel such as "Right." that short windows often hear as
nothing), or a final whose words Whisper itself judges likely not speech (the "Thank
you." short windows say on hold music; ``bench/backchannels.py``), is recognized again
with a 15 s window (``redo_windows``), and if that fails too with the full 30 s
window and Whisper's temperature fallback, exactly as before windows existed; each
redone utterance is counted once (``on_full_window_retry``, by reason). The
windowed pass itself is at temperature 0 (deterministic, bounded cost), with a beam of 3
for finals (``[asr] beam_size``; on the 675 recorded utterances of ``bench/window_floor.py``
it hears what greedy decoding garbles in short windows, "The speed dial entry you've
accessed is empty.", for a sixth more CPU per sentence) and greedy for partials. Unsure
decodes (mean token log-probability under -1) are not redone: on recorded speech that
gained little, and on synthetic or noisy speech it redid a quarter of all utterances
(``bench/window_floor.py``, ``bench/run.py``).

Two bounds keep one utterance's cost near its length. Each decoder pass generates at most
``token_budget(seconds)`` tokens, so a loop stops within a fraction of a second instead of
at Whisper's 448 tokens. And after a pass whose text ends within ``LAST_PASS_TAIL_S`` of
the audio's end, faster-whisper is not let to start another pass on the rest (the
segmenter's post-roll): such a pass costs another encode and may repeat the sentence or
loop in the near-silence. Measured in the README ("Benchmarks": "A benchmark closer to a
floor, and bounded decoding").

One utterance: ``WhisperModel.transcribe``. Several (from any calls): they are laid one
after another with ``GAP_S`` of silence between them (each starting on a 10 ms mel frame)
and decoded together by ``BatchedInferencePipeline``, one clip per utterance, encoded as
one (batch, 80, window) array; each result is mapped back to its utterance by the frame
its clip starts on. Options suit short telephone utterances: English, no
previous-text conditioning (each utterance stands alone), word timestamps on.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from assist.asr.model import FULL_WINDOW_FRAMES, LoadedModel
from assist.vocabulary import ASR_RATE, Recognized, Word

if TYPE_CHECKING:
    from assist.config import AsrConfig

GAP_S = 1.0  # silence between utterances laid end to end for a batch
FRAMES_PER_S = 100  # Whisper's mel frames: 10 ms hop
FULL_WINDOW_S = FULL_WINDOW_FRAMES / FRAMES_PER_S  # 30 s
WINDOW_MARGIN_S = 0.5  # window past the longest utterance of a step (s)
REPEAT_NGRAM = 4  # a sequence of this many words said twice (not overlapping) is a repeat
REPEAT_WORD_RUN = 4  # one word this many times in a row is a loop ("No. No. No. No. No.")
MAX_COMPRESSION_RATIO = 2.4  # zlib ratio of the text above which Whisper calls it a loop
MAX_TOKENS_PER_S = 10  # decoder tokens per second of audio, at most (speech makes 2-6)
TOKEN_MARGIN = 16  # tokens a decode may add whatever its length (timestamps, the end)
REDO_WINDOW_S = 15.0  # a repeated result is redone with this window first (s), then 30 s
LAST_PASS_TAIL_S = 0.6  # a pass whose text ends this near the audio's end is the last (s)
EMPTY_REDO_MAX_S = 2.0  # a final heard as nothing is redone when its audio is this short (s)
NO_SPEECH_PROB = 0.6  # Whisper's own no-speech threshold: a final's text above it is redone

_WORD = re.compile(r"[a-z0-9']+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# Punctuation marks standing alone, three or more in a row (". . . ."): Whisper looping on
# full stops after a short utterance. Written text attaches its marks to words ("Um...").
_LOOSE_MARKS = re.compile(r"[.,?!](?:\s+[.,?!]){2,}")


def window_frames(durations_s: Iterable[float], floor_s: float) -> int | None:
    """Mel frames (100 per second) of the encoder window for one recognition step whose
    utterances last ``durations_s`` seconds: ``max(floor_s, longest + WINDOW_MARGIN_S)``
    rounded up to whole seconds (faster-whisper aligns words on whole seconds of a clip),
    or None (the full 30 s window) when that reaches 30 s. Raises ``ValueError`` for an
    empty step."""
    longest = max(durations_s, default=None)
    if longest is None:
        raise ValueError("no utterances")
    seconds = math.ceil(max(floor_s, longest + WINDOW_MARGIN_S) - 1e-9)
    frames = seconds * FRAMES_PER_S
    return None if frames >= FULL_WINDOW_FRAMES else frames


def token_budget(seconds: float) -> int:
    """The most tokens one decoder pass over ``seconds`` of audio may generate (text,
    punctuation and timestamp tokens): ``MAX_TOKENS_PER_S`` per second plus
    ``TOKEN_MARGIN``. Recorded phone speech needs at most 5 text tokens a second (123
    Asterisk prompts); a decode caught in a repetition loop would otherwise run on to
    Whisper's own limit (448 tokens, 10 ms each on a core): seconds of CPU for a few
    seconds of speech, before the guard even sees it."""
    return math.ceil(MAX_TOKENS_PER_S * seconds) + TOKEN_MARGIN


def redo_windows(frames: int) -> list[int | None]:
    """The windows (mel frames; None = the full 30 s) a rejected result of a ``frames``
    window (``full_window_reason``) is redone with, in turn, until one passes:
    ``REDO_WINDOW_S`` first when it is longer (no repeat at a 15 s floor in 450 recorded
    utterances, two thirds of the empty backchannels heard; half the full window's cost),
    then the full window."""
    mid = window_frames([0.0], REDO_WINDOW_S)
    return [mid, None] if mid is not None and mid > frames else [None]


def compression_ratio(text: str) -> float:
    """Bytes of ``text`` (UTF-8) over bytes of its zlib compression; 0 for empty text.
    Whisper calls a decode above ``MAX_COMPRESSION_RATIO`` a repetition loop."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def repeats_itself(text: str, n: int = REPEAT_NGRAM) -> bool:
    """Whether some sequence of ``n`` words (lower-cased, punctuation dropped) occurs twice
    without overlapping, or the text compresses like a loop. What short windows do to
    stock Whisper: "All circuits are busy now. All circuits are busy now." True speech of
    a few seconds rarely says 4 words twice. Shorter sentences count when one of 2 words or
    more is said again right after itself ("No more messages. No more messages."), and so
    do one word ``REPEAT_WORD_RUN`` times in a row (a one-word backchannel in a short
    window: "Great. Great. Great. Great. Great. Great"; "No, no, no." is speech) and three
    or more marks standing alone ("Right. . . . . . ."; the demo's agent once)."""
    if compression_ratio(text) > MAX_COMPRESSION_RATIO or _LOOSE_MARKS.search(text):
        return True
    sentences = [_WORD.findall(s.lower()) for s in _SENTENCE_END.split(text)]
    if any(len(a) >= 2 and a == b for a, b in itertools.pairwise(sentences)):
        return True
    words = _WORD.findall(text.lower())
    if any(len(list(run)) >= REPEAT_WORD_RUN for _, run in itertools.groupby(words)):
        return True
    first_at: dict[tuple[str, ...], int] = {}
    for i in range(len(words) - n + 1):
        gram = tuple(words[i : i + n])
        j = first_at.setdefault(gram, i)
        if i - j >= n:
            return True
    return False


def full_window_reason(
    text: str, seconds: float = 0.0, final: bool = False, no_speech_prob: float = 0.0
) -> str | None:
    """Why a windowed result (``text`` of ``seconds`` of audio) must be recognized again with
    a longer window, or None; the metric's label. ``"repetition"``: ``repeats_itself``.
    For a ``final`` (partials only preview, so they are never redone for these):
    ``"empty"``, no word, of audio at most ``EMPTY_REDO_MAX_S`` long (an 8 s window hears
    about a quarter of one-word backchannels as nothing where the full window hears them;
    longer audio with no word is music or noise); ``"no_speech"``, words from a segment
    whose ``no_speech_prob`` is over ``NO_SPEECH_PROB`` (Whisper's own threshold): the
    "Thank you." an 8 s window says on hold music and after a backchannel, which the full
    window does not, while no recorded sentence reaches it (``bench/backchannels.py``)."""
    if repeats_itself(text):
        return "repetition"
    if not final:
        return None
    if not _WORD.search(text.lower()):
        return "empty" if seconds <= EMPTY_REDO_MAX_S else None
    return "no_speech" if no_speech_prob > NO_SPEECH_PROB else None


@dataclass(frozen=True, slots=True)
class BatchLayout:
    """Utterances laid end to end for one batched pass: ``starts`` in samples at 16 kHz,
    each on a mel frame boundary (a multiple of 160), with at least ``GAP_S`` of silence
    after each; ``length`` the whole array's samples."""

    starts: tuple[int, ...]
    lengths: tuple[int, ...]
    length: int

    @classmethod
    def of(cls, lengths: Sequence[int]) -> BatchLayout:
        """The layout for utterances of ``lengths`` samples, in order."""
        hop = ASR_RATE // FRAMES_PER_S
        gap = int(GAP_S * ASR_RATE)
        starts = []
        position = 0
        for n in lengths:
            starts.append(position)
            position += -(-(n + gap) // hop) * hop  # next frame boundary after the gap
        return cls(tuple(starts), tuple(lengths), position)

    def join(self, batch: Sequence[np.ndarray]) -> np.ndarray:
        """The utterances in one float32 array, silence elsewhere."""
        joined = np.zeros(self.length, dtype=np.float32)
        for start, audio in zip(self.starts, batch, strict=True):
            joined[start : start + len(audio)] = audio
        return joined

    def clips(self) -> list[dict[str, float]]:
        """faster-whisper's ``clip_timestamps``: each utterance's start and end, seconds."""
        return [
            {"start": s / ASR_RATE, "end": (s + n) / ASR_RATE}
            for s, n in zip(self.starts, self.lengths, strict=True)
        ]

    def index_of(self, seek_frames: int) -> int:
        """The utterance whose clip starts at mel frame ``seek_frames`` (faster-whisper's
        ``Segment.seek`` in a batched pass: the clip start, truncated to a frame). Raises
        ``ValueError`` if no clip starts within a frame of it."""
        hop = ASR_RATE // FRAMES_PER_S
        for i, start in enumerate(self.starts):
            if abs(start // hop - seek_frames) <= 1:
                return i
        raise ValueError(f"no clip starts at frame {seek_frames}")


def _word(word: Any, offset_s: float) -> Word:
    """A faster-whisper word, its times made relative to its own utterance. The text is
    kept as Whisper wrote it, leading space included (the words join to the text)."""
    return Word(
        str(word.word),
        round(float(word.start) - offset_s, 3),
        round(float(word.end) - offset_s, 3),
        round(float(word.probability), 3),
    )


class _Decoded:
    """One utterance's segments gathered: their text and words, and the highest
    no-speech probability of a segment with words in it (0-1; 0 when none has)."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.words: list[Word] = []
        self.no_speech_prob = 0.0

    def add(self, segment: Any, offset_s: float) -> None:
        if not _WORD.search(segment.text.lower()):
            return  # "." alone after the sentence (short windows): no speech in it
        self.texts.append(segment.text.strip())
        self.words += [_word(w, offset_s) for w in segment.words or ()]
        self.no_speech_prob = max(self.no_speech_prob, float(segment.no_speech_prob))

    def redo_reason(self, seconds: float, final: bool) -> str | None:
        """``full_window_reason`` of this result, ``seconds`` of audio long."""
        return full_window_reason(
            self.recognized().text, seconds, final=final, no_speech_prob=self.no_speech_prob
        )

    def recognized(self) -> Recognized:
        return Recognized(" ".join(t for t in self.texts if t), self.words)


class WhisperRecognizer:
    """The ``Recognizer`` behind the ASR pool: faster-whisper on a ``LoadedModel`` (loaded
    by ``load_model``: it must have the per-thread window), options for short telephone
    utterances (module docstring). ``beam_size`` is the decoder beam of finals (1 =
    greedy); partials (``words=False``) are always greedy.

    ``window_floor_s`` (1-30 s; 30 = always the full window) is the shortest encoder window;
    ``silence_tail`` extends a short window's encoder output with the encoding of silence
    to Whisper's 1500 positions (``assist/asr/model.py``; CPU only);
    ``on_full_window_retry(reason)`` is called, in the worker thread, each time a windowed
    result is redone with a longer window (``full_window_reason``, ``redo_windows``).
    ``full_window_retries`` counts them too. Thread-safe: one recognizer serves all the
    pool's workers.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        beam_size: int = 1,
        window_floor_s: float = FULL_WINDOW_S,
        on_full_window_retry: Callable[[str], None] | None = None,
        silence_tail: bool = True,
    ) -> None:
        if not 1.0 <= window_floor_s <= FULL_WINDOW_S:
            raise ValueError(f"window_floor_s {window_floor_s}: not in 1..30 s")
        self.loaded = loaded
        self._model = loaded.model
        self._beam_size = beam_size
        self._floor_s = window_floor_s
        self._silence_tail = silence_tail
        self._on_retry = on_full_window_retry
        self._local = threading.local()  # .batched: this thread's BatchedInferencePipeline
        self._lock = threading.Lock()
        self.full_window_retries = 0

    @classmethod
    def for_finals(
        cls,
        loaded: LoadedModel,
        asr: AsrConfig,
        on_full_window_retry: Callable[[str], None] | None = None,
    ) -> WhisperRecognizer:
        """The recognizer as ``[asr]`` configures it for finals (``beam_size``,
        ``window_floor_s``, ``silence_tail``): the one place the service and the benchmarks
        that measure what it hears build it from settings."""
        return cls(
            loaded,
            asr.beam_size,
            asr.window_floor_s,
            on_full_window_retry,
            silence_tail=asr.silence_tail,
        )

    @property
    def beam_size(self) -> int:
        """The decoder beam of finals (1 = greedy)."""
        return self._beam_size

    @property
    def window_floor_s(self) -> float:
        """The shortest encoder window, seconds (30 = always Whisper's full window)."""
        return self._floor_s

    @property
    def silence_tail(self) -> bool:
        """Whether a short window's encoder output is extended with encoded silence."""
        return self._silence_tail

    def recognize(self, batch: list[np.ndarray], words: bool = True) -> list[Recognized]:
        """Text and words of each utterance (float32 mono at 16 kHz, shape (samples,)), in order.

        Word times are seconds from the start of that utterance's audio. ``words`` False:
        text only (no word list), decoded without timestamp tokens or word alignment,
        about a quarter less CPU (README, "Benchmarks"): for partials, which only preview.
        One utterance is transcribed alone; several go through one batched pass, laid end
        to end with ``GAP_S`` of silence between them, in one encoder window that fits the
        longest. A windowed result the guard rejects is transcribed again alone with a
        longer window (``redo_windows``). Blocking: runs in an ASR worker thread.
        """
        frames = window_frames((len(a) / ASR_RATE for a in batch), self._floor_s)
        budget = token_budget(max(len(a) for a in batch) / ASR_RATE)
        options = self._options(frames, words, budget)
        decoded = (
            [self._one(batch[0], frames, options)]
            if len(batch) == 1
            else self._many(batch, frames, options)
        )
        results = []
        for audio, one in zip(batch, decoded, strict=True):
            seconds = len(audio) / ASR_RATE
            # only windowed results are judged
            if frames is not None and (reason := one.redo_reason(seconds, final=words)):
                with self._lock:
                    self.full_window_retries += 1
                if self._on_retry is not None:
                    self._on_retry(reason)
                for redo in redo_windows(frames):
                    one = self._one(audio, redo, self._options(redo, words, budget))
                    if redo is None or one.redo_reason(seconds, final=words) is None:
                        break
            results.append(one.recognized())
        return results

    def _options(self, frames: int | None, words: bool, budget: int) -> dict[str, Any]:
        options: dict[str, Any] = {
            "max_new_tokens": budget,
            "language": "en",
            # partials only preview (no cue reads them): greedy, the cheapest decode
            "beam_size": self._beam_size if words else 1,
            "word_timestamps": words,
            "condition_on_previous_text": False,
            "without_timestamps": not words,
        }
        if frames is not None:
            options["temperature"] = 0.0  # no sampling fallback: the guard redoes instead
        return options

    def _one(self, audio: np.ndarray, frames: int | None, options: dict[str, Any]) -> _Decoded:
        out = _Decoded()
        tail_from_s = len(audio) / ASR_RATE - LAST_PASS_TAIL_S
        with self._model.window(frames, self._silence_tail):
            segments, _ = self._model.transcribe(audio, vad_filter=False, **options)
            for segment in segments:  # lazy: the decoding happens here, in this thread
                out.add(segment, 0.0)
                if segment.end >= tail_from_s:
                    # Nothing but the post-roll is left: don't let faster-whisper decode
                    # it as a pass of its own (it may repeat what was said, or loop)
                    break
        return out

    def _many(
        self, batch: list[np.ndarray], frames: int | None, options: dict[str, Any]
    ) -> list[_Decoded]:
        layout = BatchLayout.of([len(a) for a in batch])
        out = [_Decoded() for _ in batch]
        with self._model.window(frames, self._silence_tail):
            segments, _ = self._batched().transcribe(
                layout.join(batch),
                clip_timestamps=layout.clips(),
                batch_size=len(batch),
                **options,
            )
            for segment in segments:
                # word times are from the clip's start truncated to a frame: seek / 100
                out[layout.index_of(segment.seek)].add(segment, segment.seek / FRAMES_PER_S)
        return out

    def _batched(self) -> Any:
        """This thread's ``BatchedInferencePipeline`` (it keeps state between calls)."""
        pipeline = getattr(self._local, "batched", None)
        if pipeline is None:
            from faster_whisper import BatchedInferencePipeline

            pipeline = self._local.batched = BatchedInferencePipeline(self._model)
        return pipeline
