"""Test signals and WAV encoding (stdlib `wave` + numpy), shared by the test modules."""

from __future__ import annotations

import io
import wave

import numpy as np

RATE = 16_000


def tone(seconds: float, freq: float = 440.0, amplitude: float = 0.5, rate: int = RATE) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


def silence(seconds: float, rate: int = RATE) -> np.ndarray:
    return np.zeros(round(seconds * rate))


def wav_bytes(signal: np.ndarray, rate: int = RATE, width: int = 2, channels: int = 1) -> bytes:
    """Encode float samples in [-1, 1] as PCM WAV; mono input is repeated on every channel."""
    if signal.ndim == 1:
        signal = np.repeat(signal[:, None], channels, axis=1)
    assert signal.shape[1] == channels
    full_scale = 2 ** (8 * width - 1)
    ints = np.clip(np.round(signal * full_scale), -full_scale, full_scale - 1).astype(np.int64)
    if width == 1:
        raw = (ints + 128).astype(np.uint8).tobytes()
    elif width == 3:
        u = (ints & 0xFFFFFF).astype(np.uint32).reshape(-1)
        raw = np.stack([u & 0xFF, (u >> 8) & 0xFF, (u >> 16) & 0xFF], axis=1).astype(np.uint8).tobytes()
    else:
        raw = ints.astype(f"<i{width}").tobytes()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)
    return buf.getvalue()


def speech_like() -> np.ndarray:
    """0.5 s tone, 0.5 s silence, 0.5 s tone, 0.3 s silence: two segments at 0-0.5 and 1-1.5 s."""
    return np.concatenate([tone(0.5), silence(0.5), tone(0.5, freq=660.0), silence(0.3)])
