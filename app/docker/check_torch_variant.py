"""Build-time guard: the installed torch family must match the image variant.

    python check_torch_variant.py none|cpu|cuda|rocm

Runs in the deps stage right after torch is installed, so a wrong index or TORCH_SPEC stops the
build with a clear message instead of shipping, say, 3 GB of CUDA libraries in the CPU image
(what plain `pip install torch` from the default index does). It imports no native code: the
deps stage runs on the build machine and the venv may be for another CPU (cross-installed), so
torch's build (`torch.version.cuda`, `.hip`) is read from torch/version.py, plain Python.

  none  cpu-minimal: no torch and no GPU runtime at all
  cpu   torch built without CUDA/ROCm; no nvidia-*, cuda-* or triton distributions
  cuda  torch.version.cuda set
  rocm  torch.version.hip set; no nvidia-* or cuda-* distributions
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import re
import sys
from types import SimpleNamespace


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed() -> dict[str, str]:
    return {_normalized(d.metadata["Name"]): d.version for d in md.distributions()}


def torch_build() -> SimpleNamespace | None:
    """`__version__`, `cuda` and `hip` of the installed torch, from its torch/version.py (run on
    its own, without importing torch); None when torch is not installed."""
    try:
        path = md.distribution("torch").locate_file("torch/version.py")
    except md.PackageNotFoundError:
        return None
    spec = importlib.util.spec_from_file_location("_torch_version", str(path))
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return SimpleNamespace(__version__=getattr(module, "__version__", "?"),
                           cuda=getattr(module, "cuda", None), hip=getattr(module, "hip", None))


def is_cuda_runtime(name: str) -> bool:
    return name.startswith(("nvidia-", "cuda-"))


def is_triton(name: str) -> bool:
    return "triton" in name


def problems(expect: str, dists: dict[str, str]) -> list[str]:
    found: list[str] = []
    cuda_dists = sorted(f"{n}=={v}" for n, v in dists.items() if is_cuda_runtime(n))
    triton_dists = sorted(f"{n}=={v}" for n, v in dists.items() if is_triton(n))
    torch_version = dists.get("torch")

    if expect == "none":
        if torch_version:
            found.append(f"torch {torch_version} is installed in the torch-less variant")
    elif not torch_version:
        found.append("torch is not installed")

    if expect in ("none", "cpu", "rocm") and cuda_dists:
        found.append("NVIDIA/CUDA distributions installed: " + ", ".join(cuda_dists))
    if expect in ("none", "cpu") and triton_dists:
        found.append("triton distributions installed: " + ", ".join(triton_dists))

    build = torch_build() if torch_version and expect != "none" else None
    if build is not None:
        cuda, hip = build.cuda, build.hip
        if expect == "cpu" and (cuda or hip):
            found.append(f"torch {build.__version__} is a GPU build (cuda={cuda}, hip={hip})")
        if expect == "cuda" and not cuda:
            found.append(f"torch {build.__version__} is not a CUDA build")
        if expect == "rocm" and not hip:
            found.append(f"torch {build.__version__} is not a ROCm build (cuda={cuda})")
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in ("none", "cpu", "cuda", "rocm"):
        print(__doc__, file=sys.stderr)
        return 2
    expect = argv[1]
    found = problems(expect, installed())
    if found:
        print(f"TORCH VARIANT GUARD FAILED (expected: {expect})", file=sys.stderr)
        for line in found:
            print(f"  - {line}", file=sys.stderr)
        print(
            "  Check TORCH_INDEX_URL and TORCH_SPEC: the CPU variant needs the PyTorch CPU index;"
            " the default index serves the CUDA build of torch.",
            file=sys.stderr,
        )
        return 1
    print(f"torch variant guard passed: {expect}, torch {installed().get('torch', 'absent')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
