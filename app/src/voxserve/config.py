"""Settings read from the environment once, at application start."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_UPLOAD_BYTES = 16 * 1024 * 1024


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    value = int(raw)
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}")
    return value


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    vad_threshold_dbfs: float = -40.0

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            data_dir=Path(os.environ.get("VOXSERVE_DATA_DIR", "").strip() or "./data"),
            max_upload_bytes=_int_env("VOXSERVE_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES),
            vad_threshold_dbfs=_float_env("VOXSERVE_VAD_THRESHOLD_DBFS", -40.0),
        )
