"""Level and voice-activity analysis of decoded audio.

Levels are RMS and peak relative to digital full scale (a full-scale square wave is 0 dBFS, a
full-scale sine -3.01 dBFS). Digital silence is reported at the floor, -120 dBFS, instead of -inf,
which JSON cannot carry.

Voice activity: the channels are averaged to mono, cut into 20 ms frames, and a frame is active
when its mean-square energy exceeds the threshold. Runs of active frames become segments; gaps
shorter than `MIN_GAP_MS` are bridged (pauses between words) and segments shorter than
`MIN_SEGMENT_MS` dropped (clicks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .audio import DecodedAudio
from .backend import Backend

FLOOR_DBFS = -120.0
FRAME_MS = 20.0
MIN_GAP_MS = 100.0
MIN_SEGMENT_MS = 40.0


def _db(power: float) -> float:
    """Power (mean square) to dBFS, clamped at the floor."""
    if power <= 10 ** (FLOOR_DBFS / 10):
        return FLOOR_DBFS
    return 10.0 * math.log10(power)


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float

    def as_dict(self) -> dict[str, float]:
        return {"start_s": round(self.start_s, 6), "end_s": round(self.end_s, 6)}


@dataclass(frozen=True)
class AnalysisResult:
    duration_s: float
    sample_rate: int
    channels: int
    sample_width_bits: int
    frames: int
    rms_dbfs: float
    peak_dbfs: float
    vad_threshold_dbfs: float
    vad_frame_ms: float
    backend: str
    segments: list[Segment] = field(default_factory=list)


def _runs(active: np.ndarray) -> list[tuple[int, int]]:
    """Half-open [start, end) frame index ranges where `active` is True."""
    edges = np.diff(np.concatenate(([0], active.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def voice_segments(
    frame_power: np.ndarray,
    frame_len: int,
    n_samples: int,
    sample_rate: int,
    threshold_dbfs: float,
) -> list[Segment]:
    threshold_power = 10 ** (threshold_dbfs / 10)
    runs = _runs(frame_power > threshold_power)
    min_gap = max(1, round(MIN_GAP_MS / FRAME_MS))
    min_len = max(1, round(MIN_SEGMENT_MS / FRAME_MS))
    merged: list[list[int]] = []
    for start, end in runs:
        if merged and start - merged[-1][1] < min_gap:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return [
        Segment(start * frame_len / sample_rate, min(end * frame_len, n_samples) / sample_rate)
        for start, end in merged
        if end - start >= min_len
    ]


def analyze(audio: DecodedAudio, backend: Backend, threshold_dbfs: float) -> AnalysisResult:
    samples = audio.samples
    total = samples.size
    rms_power = backend.sum_squares(samples) / total
    peak = float(np.max(np.abs(samples)))
    mono = samples.mean(axis=1) if audio.channels > 1 else samples[:, 0]
    frame_len = max(1, round(audio.sample_rate * FRAME_MS / 1000))
    power = backend.frame_power(mono, frame_len)
    segments = voice_segments(power, frame_len, mono.shape[0], audio.sample_rate, threshold_dbfs)
    return AnalysisResult(
        duration_s=audio.duration_s,
        sample_rate=audio.sample_rate,
        channels=audio.channels,
        sample_width_bits=audio.sample_width_bits,
        frames=audio.frames,
        rms_dbfs=_db(rms_power),
        peak_dbfs=_db(peak * peak),
        vad_threshold_dbfs=threshold_dbfs,
        vad_frame_ms=FRAME_MS,
        backend=backend.name,
        segments=segments,
    )
