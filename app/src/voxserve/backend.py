"""Numeric backends for the energy computations, chosen once at import.

torch is used when it is importable (the image variants that ship it), numpy otherwise;
`VOXSERVE_BACKEND=numpy` forces numpy, `VOXSERVE_BACKEND=torch` makes a missing torch an error.
The backend name reflects how torch was built, not which device happens to be present:
a CUDA build reports `torch-cuda` even on a machine without a GPU (it then computes on the CPU),
so the name tells operators which image they run.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

import numpy as np


class Backend(Protocol):
    name: str
    device: str

    def sum_squares(self, samples: np.ndarray) -> float: ...

    def frame_power(self, mono: np.ndarray, frame_len: int) -> np.ndarray: ...


def _frame_counts(n: int, frame_len: int) -> np.ndarray:
    n_frames = -(-n // frame_len)
    counts = np.full(n_frames, frame_len, dtype=np.float64)
    counts[-1] = n - frame_len * (n_frames - 1)
    return counts


class NumpyBackend:
    name = "numpy"
    device = "cpu"

    def sum_squares(self, samples: np.ndarray) -> float:
        flat = samples.reshape(-1)
        return float(np.dot(flat, flat))

    def frame_power(self, mono: np.ndarray, frame_len: int) -> np.ndarray:
        """Mean square of each frame; the last, partial frame is averaged over its own length."""
        n = mono.shape[0]
        counts = _frame_counts(n, frame_len)
        padded = np.zeros(counts.shape[0] * frame_len, dtype=np.float64)
        padded[:n] = mono
        return (padded.reshape(-1, frame_len) ** 2).sum(axis=1) / counts


class TorchBackend:
    def __init__(self, torch: Any) -> None:
        self._torch = torch
        if getattr(torch.version, "hip", None):
            self.name = "torch-rocm"
        elif getattr(torch.version, "cuda", None):
            self.name = "torch-cuda"
        else:
            self.name = "torch-cpu"
        # ROCm builds expose their GPUs through the torch.cuda API as well.
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        # float32 is what accelerators are fast at; the results agree with numpy's float64
        # within ~1e-4 dB, far below anything the thresholds care about.
        self._dtype = torch.float32

    def _tensor(self, array: np.ndarray) -> Any:
        return self._torch.from_numpy(np.ascontiguousarray(array)).to(
            device=self.device, dtype=self._dtype
        )

    def sum_squares(self, samples: np.ndarray) -> float:
        t = self._tensor(samples.reshape(-1))
        # Accumulate in float64: long files would lose precision in a float32 sum.
        return float(self._torch.sum(t.double() ** 2).item())

    def frame_power(self, mono: np.ndarray, frame_len: int) -> np.ndarray:
        torch = self._torch
        n = mono.shape[0]
        counts = _frame_counts(n, frame_len)
        t = self._tensor(mono)
        pad = counts.shape[0] * frame_len - n
        if pad:
            t = torch.nn.functional.pad(t, (0, pad))
        sums = (t.reshape(-1, frame_len) ** 2).sum(dim=1)
        return sums.double().cpu().numpy() / counts


def select_backend(preference: str | None = None) -> Backend:
    pref = (preference or os.environ.get("VOXSERVE_BACKEND", "") or "auto").strip().lower()
    if pref not in ("auto", "numpy", "torch"):
        raise ValueError(f"VOXSERVE_BACKEND must be auto, numpy or torch, got {pref!r}")
    if pref == "numpy":
        return NumpyBackend()
    try:
        import torch
    except ImportError:
        if pref == "torch":
            raise
        return NumpyBackend()
    return TorchBackend(torch)


BACKEND: Backend = select_backend()
