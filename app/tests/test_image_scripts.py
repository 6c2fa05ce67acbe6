"""The build-time helpers of the Dockerfiles (app/docker/): variant guard and venv trim."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import SimpleNamespace

import pytest

DOCKER_DIR = Path(__file__).resolve().parents[1] / "docker"
sys.path.insert(0, str(DOCKER_DIR))

import check_torch_variant as guard  # noqa: E402
import trim_venv  # noqa: E402

CUDA_SET = {"torch": "2.15.0", "nvidia-cublas": "13.4.1.3", "cuda-toolkit": "13.2.2",
            "triton": "3.9.0", "numpy": "2.5.5"}


def fake_torch(monkeypatch, cuda=None, hip=None) -> None:
    version = SimpleNamespace(cuda=cuda, hip=hip)
    monkeypatch.setitem(sys.modules, "torch", SimpleNamespace(version=version, __version__="x"))


def test_guard_rejects_the_default_index_torch_for_cpu(monkeypatch) -> None:
    fake_torch(monkeypatch, cuda="13.2")
    found = "\n".join(guard.problems("cpu", CUDA_SET))
    assert "nvidia-cublas" in found
    assert "cuda-toolkit" in found
    assert "triton==3.9.0" in found
    assert "GPU build" in found


def test_guard_accepts_cpu_torch(monkeypatch) -> None:
    fake_torch(monkeypatch)
    assert guard.problems("cpu", {"torch": "2.15.0+cpu", "sympy": "1.14.0"}) == []


def test_guard_cpu_minimal_must_have_no_torch() -> None:
    assert guard.problems("none", {"numpy": "2.5.5"}) == []
    assert guard.problems("none", {"torch": "2.15.0+cpu"})


def test_guard_cuda_and_rocm(monkeypatch) -> None:
    fake_torch(monkeypatch, cuda="13.2")
    assert guard.problems("cuda", CUDA_SET) == []
    assert guard.problems("rocm", CUDA_SET)  # CUDA build and nvidia wheels
    fake_torch(monkeypatch, hip="7.2")
    assert guard.problems("rocm", {"torch": "2.15.0+rocm7.2", "triton-rocm": "3.9.0"}) == []


def test_guard_normalizes_names() -> None:
    assert guard._normalized("Nvidia_CuBLAS.cu13") == "nvidia-cublas-cu13"


def _symbol_laden_elf() -> Path | None:
    dynload = Path(sysconfig.get_config_var("DESTSHARED") or "/nonexistent")
    for candidate in sorted(dynload.glob("*.so")):
        sections = trim_venv.elf_sections(candidate) or set()
        if ".symtab" in sections:
            return candidate
    return None


def test_trim(tmp_path: Path) -> None:
    site = tmp_path / "venv/lib/python3.13/site-packages"
    files = {
        "pkg/__init__.py": "",
        "pkg/tests/test_x.py": "x = 1\n",
        "pkg/sub/test/data.bin": "0" * 100,
        "pkg/testing/__init__.py": "# imported at run time: kept\n",
        "pkg/include/pkg.h": "int f(void);\n",
        "pkg/core.pyi": "def f() -> int: ...\n",
        "pkg/libstatic.a": "!<arch>\n",
        "other/include/__init__.py": "# a package called include: kept\n",
        "keep/include/keep.h": "/* kept by --keep-headers-of */\n",
        "fake/not_elf.so": "not an ELF file",
        "tests/__init__.py": "# top-level package named tests: not a test suite of a package\n",
    }
    for rel, text in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    elf = _symbol_laden_elf()
    if elf is not None and shutil.which("strip"):
        (site / "native").mkdir()
        shutil.copy(elf, site / "native/_ext.so")
        (site / "native.libs").mkdir()
        shutil.copy(elf, site / "native.libs/libvendored.so")

    result = subprocess.run(
        [sys.executable, str(DOCKER_DIR / "trim_venv.py"), str(tmp_path / "venv"),
         "--keep-headers-of", "keep"],
        capture_output=True, text=True, check=True,
    )
    assert "saved" in result.stdout
    for gone in ["pkg/tests", "pkg/sub/test", "pkg/include", "pkg/core.pyi", "pkg/libstatic.a"]:
        assert not (site / gone).exists(), gone
    for kept in ["pkg/__init__.py", "pkg/testing/__init__.py", "other/include/__init__.py",
                 "keep/include/keep.h", "fake/not_elf.so", "tests/__init__.py"]:
        assert (site / kept).exists(), kept
    if elf is not None and shutil.which("strip"):
        assert ".symtab" not in trim_venv.elf_sections(site / "native/_ext.so")
        assert ".symtab" in trim_venv.elf_sections(site / "native.libs/libvendored.so")


def test_trim_leaves_gpu_code_unstripped(tmp_path: Path) -> None:
    elf = _symbol_laden_elf()
    if elf is None or not shutil.which("objcopy"):
        pytest.skip("no symbol-laden ELF or no objcopy on this machine")
    site = tmp_path / "venv/lib/python3.13/site-packages/gpu"
    site.mkdir(parents=True)
    blob = tmp_path / "blob"
    blob.write_bytes(b"\0" * 64)
    subprocess.run(["objcopy", "--add-section", f".nv_fatbin={blob}", str(elf),
                    str(site / "libkernels.so")], check=True)
    subprocess.run([sys.executable, str(DOCKER_DIR / "trim_venv.py"), str(tmp_path / "venv")],
                   capture_output=True, check=True)
    assert ".symtab" in trim_venv.elf_sections(site / "libkernels.so")
