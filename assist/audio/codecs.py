"""Telephony sample codecs: G.711 mu-law and 16-bit little-endian PCM to float32.

Pure numpy, no ``audioop`` (removed in Python 3.13). Output samples are float32 in
[-1, 1); frames are interleaved sample by sample in the negotiated channel order.
"""

from __future__ import annotations

import numpy as np

from assist.vocabulary import Encoding


def _mulaw_table() -> np.ndarray:
    """The 256-entry G.711 mu-law expansion table, scaled to float32 [-1, 1)."""
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    linear = np.where(sign != 0, -magnitude, magnitude)
    return (linear / 32768.0).astype(np.float32)


MULAW_TO_FLOAT = _mulaw_table()


def mulaw_encode(samples: np.ndarray) -> bytes:
    """Encode float samples in [-1, 1) as G.711 mu-law bytes (used by tools and tests)."""
    pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int32)
    sign = np.where(pcm < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(pcm), 32635) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def decode(payload: bytes, encoding: Encoding) -> np.ndarray:
    """Decode raw bytes to float32 samples (still interleaved)."""
    if encoding == "mulaw":
        return MULAW_TO_FLOAT[np.frombuffer(payload, dtype=np.uint8)]
    return np.frombuffer(payload, dtype="<i2").astype(np.float32) / np.float32(32768.0)


def deinterleave(samples: np.ndarray, channels: int) -> list[np.ndarray]:
    """Split interleaved samples into one contiguous array per channel."""
    if channels == 1:
        return [samples]
    frames = samples.reshape(-1, channels)
    return [np.ascontiguousarray(frames[:, i]) for i in range(channels)]
