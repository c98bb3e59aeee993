"""The faster-whisper recognizer behind the ASR pool.

One utterance: ``WhisperModel.transcribe``. Several (from any calls): they are laid one
after another with a second of silence between them and decoded in one batch by
``BatchedInferencePipeline`` with one clip per utterance, then mapped back by time. Each
clip is padded to Whisper's 30 s window anyway, so on a GPU a batch of 8 costs about as
much as one utterance. Options suit short telephone utterances: greedy, English, no
previous-text conditioning (each utterance stands alone), word timestamps on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from assist.asr.model import LoadedModel
from assist.vocabulary import ASR_RATE, Recognized, Word

GAP_S = 1.0  # silence between utterances laid end to end for a batch


def _word(word: Any, offset_s: float) -> Word:
    """A faster-whisper word, its times made relative to its own utterance. The text is
    kept as Whisper wrote it, leading space included (the words join to the text)."""
    return Word(
        str(word.word),
        round(float(word.start) - offset_s, 3),
        round(float(word.end) - offset_s, 3),
        round(float(word.probability), 3),
    )


class WhisperRecognizer:
    """The ``Recognizer`` behind the ASR pool: faster-whisper on a ``LoadedModel``, options
    for short telephone utterances (module docstring), ``beam_size`` 1 = greedy."""

    def __init__(self, loaded: LoadedModel, beam_size: int = 1) -> None:
        from faster_whisper import BatchedInferencePipeline

        self.loaded = loaded
        self._model = loaded.model
        self._batched = BatchedInferencePipeline(loaded.model)
        self._beam_size = beam_size

    def recognize(self, batch: list[np.ndarray]) -> list[Recognized]:
        """Text and words of each utterance (float32 mono at 16 kHz, shape (samples,)), in order.

        Word times are seconds from the start of that utterance's audio. One utterance is
        transcribed alone; several go through one batched pass, laid end to end with
        ``GAP_S`` of silence between them. Blocking: runs in an ASR worker thread.
        """
        if len(batch) == 1:
            return [self._one(batch[0])]
        return self._many(batch)

    def _options(self) -> dict[str, object]:
        return {
            "language": "en",
            "beam_size": self._beam_size,
            "word_timestamps": True,
            "condition_on_previous_text": False,
            "without_timestamps": False,
        }

    def _one(self, audio: np.ndarray) -> Recognized:
        segments, _ = self._model.transcribe(audio, vad_filter=False, **self._options())
        words: list[Word] = []
        texts = []
        for segment in segments:  # lazy: the decoding happens here, in this thread
            texts.append(segment.text.strip())
            words += [_word(w, 0.0) for w in segment.words or ()]
        return Recognized(" ".join(t for t in texts if t), words)

    def _many(self, batch: list[np.ndarray]) -> list[Recognized]:
        gap = np.zeros(int(GAP_S * ASR_RATE), dtype=np.float32)
        offsets = []
        pieces = []
        position = 0
        for audio in batch:
            offsets.append(position / ASR_RATE)
            pieces += [audio, gap]
            position += len(audio) + len(gap)
        joined = np.concatenate(pieces)
        clips = [
            {"start": offset, "end": offset + len(audio) / ASR_RATE}
            for offset, audio in zip(offsets, batch, strict=True)
        ]
        segments, _ = self._batched.transcribe(
            joined, clip_timestamps=clips, batch_size=len(batch), **self._options()
        )
        texts: list[list[str]] = [[] for _ in batch]
        words: list[list[Word]] = [[] for _ in batch]
        for segment in segments:
            i = max(k for k, offset in enumerate(offsets) if offset <= segment.start + 0.05)
            texts[i].append(segment.text.strip())
            words[i] += [_word(w, offsets[i]) for w in segment.words or ()]
        return [
            Recognized(" ".join(t for t in text if t), ws)
            for text, ws in zip(texts, words, strict=True)
        ]
