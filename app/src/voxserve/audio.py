"""WAV decoding with the standard library's `wave` module plus numpy.

Every way an upload can be unusable maps to an `AudioError` carrying the HTTP status and a
stable machine-readable code, so the API can answer 4xx without storing anything.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass

import numpy as np


class AudioError(Exception):
    """An upload that cannot be analysed; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class DecodedAudio:
    sample_rate: int
    channels: int
    sample_width_bits: int
    # float64 in [-1, 1), shape (frames, channels)
    samples: np.ndarray

    @property
    def frames(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate


def _is_riff_wave(data: bytes) -> bool:
    return len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WAVE"


def _pcm_to_float(raw: bytes, width: int, channels: int) -> np.ndarray:
    """Little-endian PCM bytes to float64 samples scaled so that full scale is 1.0."""
    if width == 1:  # 8-bit WAV is unsigned, centred on 128
        ints = np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0
        scale = 128.0
    elif width == 2:
        ints = np.frombuffer(raw, dtype="<i2").astype(np.float64)
        scale = 32768.0
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        packed = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        ints = np.where(packed >= 1 << 23, packed - (1 << 24), packed).astype(np.float64)
        scale = float(1 << 23)
    elif width == 4:
        ints = np.frombuffer(raw, dtype="<i4").astype(np.float64)
        scale = float(1 << 31)
    else:  # pragma: no cover - rejected before
        raise AssertionError(width)
    return (ints / scale).reshape(-1, channels)


def decode_wav(data: bytes) -> DecodedAudio:
    if not data:
        raise AudioError(400, "empty_file", "the uploaded file is empty")
    if not _is_riff_wave(data):
        raise AudioError(415, "not_wav", "the upload is not a RIFF/WAVE file")
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            channels = w.getnchannels()
            width = w.getsampwidth()
            rate = w.getframerate()
            declared_frames = w.getnframes()
            raw = w.readframes(declared_frames)
    except EOFError as exc:
        raise AudioError(422, "truncated_wav", "the WAV header is truncated") from exc
    except wave.Error as exc:
        # `wave` raises wave.Error both for non-PCM encodings (float, A-law, extensible on
        # Python < 3.12) and for broken chunk structure.
        msg = str(exc)
        if "unknown format" in msg or "bad sample width" in msg:
            raise AudioError(415, "unsupported_wav", f"unsupported WAV encoding: {msg}") from exc
        raise AudioError(422, "malformed_wav", f"malformed WAV file: {msg}") from exc
    if width not in (1, 2, 3, 4):
        raise AudioError(415, "unsupported_wav", f"unsupported sample width: {8 * width} bits")
    if channels < 1 or rate < 1:
        raise AudioError(422, "malformed_wav", "the WAV header declares no channels or rate")
    frame_bytes = width * channels
    if len(raw) < declared_frames * frame_bytes:
        raise AudioError(
            422,
            "truncated_wav",
            f"the WAV data chunk declares {declared_frames} frames but holds "
            f"{len(raw) // frame_bytes}",
        )
    if declared_frames == 0:
        raise AudioError(422, "no_audio", "the WAV file holds no audio frames")
    samples = _pcm_to_float(raw, width, channels)
    return DecodedAudio(
        sample_rate=rate, channels=channels, sample_width_bits=8 * width, samples=samples
    )
