"""torch and numpy backends must agree. Skipped where torch is not installed (e.g. the host and
the cpu-minimal image); it runs where torch is importable."""

from __future__ import annotations

import numpy as np
import pytest

from wavgen import speech_like, tone, wav_bytes
from voxserve.analysis import analyze
from voxserve.audio import decode_wav
from voxserve.backend import NumpyBackend, TorchBackend, select_backend


torch = pytest.importorskip("torch")


def test_torch_backend_name_reflects_the_build() -> None:
    backend = TorchBackend(torch)
    if torch.version.hip:
        assert backend.name == "torch-rocm"
    elif torch.version.cuda:
        assert backend.name == "torch-cuda"
    else:
        assert backend.name == "torch-cpu"


def test_env_forces_numpy(monkeypatch) -> None:
    monkeypatch.setenv("VOXSERVE_BACKEND", "numpy")
    assert select_backend().name == "numpy"
    monkeypatch.setenv("VOXSERVE_BACKEND", "auto")
    assert select_backend().name.startswith("torch-")


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("signal", ["speech", "noise"])
def test_torch_and_numpy_agree(channels: int, signal: str) -> None:
    rng = np.random.default_rng(7)
    samples = speech_like() if signal == "speech" else np.concatenate(
        [rng.normal(0, 0.1, 7_777), np.zeros(5_000), tone(0.33) * 0.2]
    )
    audio = decode_wav(wav_bytes(samples, channels=channels))
    a = analyze(audio, NumpyBackend(), -40.0)
    b = analyze(audio, TorchBackend(torch), -40.0)
    assert b.rms_dbfs == pytest.approx(a.rms_dbfs, abs=1e-3)
    assert b.peak_dbfs == a.peak_dbfs
    assert b.segments == a.segments
    mono = audio.samples.mean(axis=1)
    np.testing.assert_allclose(
        TorchBackend(torch).frame_power(mono, 320), NumpyBackend().frame_power(mono, 320),
        rtol=1e-4, atol=1e-9,
    )
