"""Build-time import test of the trimmed environment (deps stage, after trim_venv.py).

Imports every runtime dependency and exercises the code paths the service uses, so a trim that
removed something needed fails the build instead of the first request. Deliberately independent
of the app's source: it must not be re-run (and its layer rebuilt) on every app change.

    python smoke_test.py --torch required|absent|WITH_TORCH

WITH_TORCH: required when the environment variable WITH_TORCH (the Dockerfile's build argument,
which RUN sees) is 1, else absent — for an exec-form RUN, which expands no variables: the
image's own step that runs this with the image's Python, also where the runtime has no shell.
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import sys
import wave

MODULES = [
    "fastapi",
    "multipart",
    "numpy",
    "numpy.testing",
    "pydantic",
    "sqlalchemy",
    "sqlalchemy.dialects.sqlite",
    "starlette",
    "uvicorn",
    "uvicorn.lifespan.on",
    "uvicorn.loops.auto",
    "uvicorn.protocols.http.h11_impl",
]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--torch", choices=["required", "absent", "WITH_TORCH"], required=True)
    args = parser.parse_args()
    if args.torch == "WITH_TORCH":
        args.torch = "required" if os.environ.get("WITH_TORCH") == "1" else "absent"

    for name in MODULES:
        importlib.import_module(name)

    import numpy as np
    import sqlalchemy as sa

    # numpy: the WAV decode + frame-energy path
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.sin(np.arange(1600) / 5) * 8000).astype("<i2").tobytes())
    with wave.open(io.BytesIO(buf.getvalue())) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2") / 32768.0
    power = (x.reshape(-1, 160) ** 2).mean(axis=1)
    assert power.shape == (10,) and power.min() > 0.01, power
    np.fft.rfft(x)  # pulls in the bundled BLAS/LAPACK-side libraries

    # SQLAlchemy on SQLite (in memory)
    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
        conn.execute(sa.text("INSERT INTO t VALUES (42)"))
        assert conn.execute(sa.text("SELECT x FROM t")).scalar() == 42

    try:
        import torch
    except ImportError:
        torch = None
    if args.torch == "absent":
        if torch is not None:
            print("torch is installed but this variant must not have it", file=sys.stderr)
            return 1
        print("smoke test passed without torch")
        return 0
    if torch is None:
        print("torch is required but not importable", file=sys.stderr)
        return 1
    t = torch.from_numpy(x).float()
    frames = (t.reshape(-1, 160) ** 2).mean(dim=1)
    assert torch.allclose(frames.double(), torch.from_numpy(power), rtol=1e-4), frames
    import torch.nn.functional as F  # noqa: N812

    assert F.pad(t, (0, 10)).shape[0] == 1610
    assert torch.ones(64, 64).matmul(torch.ones(64, 64))[0, 0].item() == 64.0
    import torch.testing  # noqa: F401 - imported by torch itself in places; must survive trimming

    print(
        f"smoke test passed: torch {torch.__version__} cuda={torch.version.cuda} "
        f"hip={getattr(torch.version, 'hip', None)} cuda_available={torch.cuda.is_available()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
