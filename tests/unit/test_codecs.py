"""G.711 mu-law and PCM16 decoding, channel splitting and streaming resampling."""

from __future__ import annotations

import numpy as np
import pytest

from assist.audio.codecs import MULAW_TO_FLOAT, decode, deinterleave, mulaw_encode
from assist.audio.resample import StreamResampler

ALL_CODES = np.arange(256, dtype=np.uint8)


def _noise(n: int, seed: int = 0, amplitude: float = 0.5) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-amplitude, amplitude, n).astype(np.float32)


# ------------------------------------------------------------------------ mu-law


@pytest.mark.parametrize(
    ("code", "expected_int"),
    [
        (0xFF, 0),  # positive zero
        (0x7F, 0),  # negative zero decodes to 0 as well
        (0x00, -32124),  # most negative
        (0x80, 32124),  # most positive
        (0x7E, -8),  # smallest negative step
        (0xFE, 8),  # smallest positive step
        (0x70, -120),  # end of segment 0
        (0xF0, 120),
        (0x6F, -132),  # start of segment 1
    ],
)
def test_mulaw_known_g711_values(code: int, expected_int: int) -> None:
    assert MULAW_TO_FLOAT[code] == pytest.approx(expected_int / 32768.0, abs=1e-7)
    assert decode(bytes([code]), "mulaw")[0] == pytest.approx(expected_int / 32768.0, abs=1e-7)


def test_mulaw_table_shape_and_symmetry() -> None:
    assert MULAW_TO_FLOAT.shape == (256,)
    assert MULAW_TO_FLOAT.dtype == np.float32
    # Code c and c ^ 0x80 are the same magnitude with opposite sign.
    np.testing.assert_array_equal(MULAW_TO_FLOAT[:128], -MULAW_TO_FLOAT[128:])
    # Within each sign half, larger code means smaller magnitude.
    assert np.all(np.diff(MULAW_TO_FLOAT[128:]) < 0)
    assert np.all(np.abs(MULAW_TO_FLOAT) < 1.0)


def test_mulaw_encode_of_decode_table_is_identity() -> None:
    encoded = np.frombuffer(mulaw_encode(MULAW_TO_FLOAT), dtype=np.uint8)
    expected = ALL_CODES.copy()
    expected[0x7F] = 0xFF  # negative zero has no float representation: encodes as +0
    np.testing.assert_array_equal(encoded, expected)


@pytest.mark.parametrize("amplitude", [0.001, 0.01, 0.1, 0.5, 0.99])
def test_mulaw_round_trip_within_quantization_error(amplitude: float) -> None:
    x = _noise(4000, seed=1, amplitude=amplitude)
    y = decode(mulaw_encode(x), "mulaw")
    assert y.shape == x.shape
    assert y.dtype == np.float32
    # Segment e has a step of 2**(e+3) and the decoder returns the middle of the step,
    # so the error is at most half a step: <= (|x| + bias) / 32, plus 1 for rounding.
    err = np.abs(y.astype(np.float64) - x) * 32768.0
    bound = (np.abs(x.astype(np.float64)) * 32768.0 + 132.0) / 32.0 + 1.0
    assert np.all(err <= bound)
    assert np.all(np.sign(y[np.abs(x) > 1e-3]) == np.sign(x[np.abs(x) > 1e-3]))


@pytest.mark.parametrize(
    ("value", "code"),
    [(0.0, 0xFF), (1.0, 0x80), (-1.0, 0x00), (5.0, 0x80), (-5.0, 0x00)],
)
def test_mulaw_encode_known_values_and_clipping(value: float, code: int) -> None:
    assert mulaw_encode(np.array([value], dtype=np.float32)) == bytes([code])


# ------------------------------------------------------------------------ pcm16


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"\x00\x00", [0.0]),
        (b"\x01\x00", [1 / 32768]),  # little-endian: low byte first
        (b"\x00\x01", [256 / 32768]),
        (b"\xff\x7f", [32767 / 32768]),
        (b"\x00\x80", [-1.0]),
        (b"\xff\xff", [-1 / 32768]),
        (b"\x00\x40\x00\xc0", [0.5, -0.5]),
    ],
)
def test_pcm16_little_endian_decode(payload: bytes, expected: list[float]) -> None:
    out = decode(payload, "pcm16")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.array(expected, dtype=np.float32), rtol=0, atol=1e-9)


def test_pcm16_decode_matches_int16_array() -> None:
    ints = np.array([0, 1, -1, 1000, -1000, 32767, -32768], dtype="<i2")
    np.testing.assert_allclose(decode(ints.tobytes(), "pcm16"), ints / 32768.0, atol=1e-9)


# ------------------------------------------------------------------------ deinterleave


@pytest.mark.parametrize(
    ("interleaved", "channels", "expected"),
    [
        ([1, 2, 3, 4], 1, [[1, 2, 3, 4]]),
        ([1, 10, 2, 20, 3, 30], 2, [[1, 2, 3], [10, 20, 30]]),
        ([], 2, [[], []]),
    ],
)
def test_deinterleave(interleaved: list[int], channels: int, expected: list[list[int]]) -> None:
    samples = np.array(interleaved, dtype=np.float32)
    out = deinterleave(samples, channels)
    assert len(out) == channels
    for got, want in zip(out, expected, strict=True):
        np.testing.assert_array_equal(got, np.array(want, dtype=np.float32))
        assert got.flags["C_CONTIGUOUS"]


def test_deinterleave_decoded_stereo_mulaw() -> None:
    payload = bytes([0xFF, 0x80, 0xFF, 0x00])  # L=0, R=+max, L=0, R=-max
    left, right = deinterleave(decode(payload, "mulaw"), 2)
    np.testing.assert_array_equal(left, [0.0, 0.0])
    np.testing.assert_allclose(right, [32124 / 32768, -32124 / 32768], atol=1e-7)


# ------------------------------------------------------------------------ resampling


def test_resampler_same_rate_is_passthrough() -> None:
    r = StreamResampler(8000, 8000)
    x = _noise(321)
    out = r.process(x)
    assert out is x
    assert r.process(x, last=True) is x


@pytest.mark.parametrize("chunk", [160, 320, 333, 1000])
@pytest.mark.parametrize("seconds", [3, 10])
def test_resampler_16k_to_8k_chunked_length_and_content(chunk: int, seconds: int) -> None:
    x = _noise(16000 * seconds, seed=seconds)
    r = StreamResampler(16000, 8000)
    parts = [r.process(x[i : i + chunk]) for i in range(0, len(x), chunk)]
    produced = sum(len(p) for p in parts)
    # Without the final flush the stream holds back only a bounded filter delay (< 0.15 s
    # at 8 kHz), which does not grow with the length of the call.
    assert 0 <= len(x) / 2 - produced < 1200
    parts.append(r.process(np.zeros(0, dtype=np.float32), last=True))
    chunked = np.concatenate(parts)
    assert abs(len(chunked) - len(x) / 2) <= 2
    one_shot = StreamResampler(16000, 8000).process(x, last=True)
    assert len(chunked) == len(one_shot)
    np.testing.assert_allclose(chunked, one_shot, atol=1e-5)
    assert chunked.dtype == np.float32


def test_resampler_16k_to_8k_keeps_a_low_tone() -> None:
    t = np.arange(16000) / 16000
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    y = StreamResampler(16000, 8000).process(x, last=True)
    t8 = np.arange(len(y)) / 8000
    ref = 0.5 * np.sin(2 * np.pi * 440 * t8)
    middle = slice(400, len(y) - 400)
    np.testing.assert_allclose(y[middle], ref[middle], atol=0.02)
