"""The build-time helpers of the Dockerfiles (app/docker/): variant guard and venv trim."""

from __future__ import annotations

import os
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
import target_python  # noqa: E402
import trim_venv  # noqa: E402

CUDA_SET = {"torch": "2.15.0", "nvidia-cublas": "13.4.1.3", "cuda-toolkit": "13.2.2",
            "triton": "3.9.0", "numpy": "2.5.5"}


def fake_torch(monkeypatch, cuda=None, hip=None) -> None:
    build = SimpleNamespace(cuda=cuda, hip=hip, __version__="x")
    monkeypatch.setattr(guard, "torch_build", lambda: build)


def test_guard_reads_the_torch_build_without_importing_torch(tmp_path, monkeypatch) -> None:
    # A cross-installed venv: torch's files are there, its native code could not load here.
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("raise ImportError('aarch64 .so')\n")
    (tmp_path / "torch" / "version.py").write_text(
        "from typing import Optional\n__version__ = '2.15.0'\ncuda: Optional[str] = '13.2'\n"
        "hip: Optional[str] = None\n")
    info = tmp_path / "torch-2.15.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.15.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    build = guard.torch_build()
    assert (build.__version__, build.cuda, build.hip) == ("2.15.0", "13.2", None)
    assert "torch" not in sys.modules
    assert any("GPU build" in p for p in guard.problems("cpu", {"torch": "2.15.0"}))


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


def _compile_venv(lib: Path, cache: Path) -> str:
    return subprocess.run(
        [sys.executable, str(DOCKER_DIR / "compile_venv.py"), str(lib), "--cache", str(cache)],
        capture_output=True, text=True, check=True,
    ).stdout


def _tree(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under root, without following symlinked directories: bytes and mode."""
    found = {}
    for here, _dirs, names in os.walk(root):
        for name in names:
            path = Path(here) / name
            if not path.is_symlink():
                found[path.relative_to(root).as_posix()] = (path.read_bytes(), path.stat().st_mode)
    return found


def test_compile_venv_writes_what_compileall_writes_and_compiles_only_what_changed(
        tmp_path: Path) -> None:
    files = {"pkg/__init__.py": "from .core import f\n", "pkg/core.py": "def f():\n    return 1\n",
             "pkg/data/__init__.py": "X = [1, 2, 3]\n", "top.py": "import pkg\n",
             "pkg/notes.txt": "not Python\n"}
    lib, ref, cache = tmp_path / "lib", tmp_path / "ref", tmp_path / "cache"
    for rel, text in files.items():
        (lib / rel).parent.mkdir(parents=True, exist_ok=True)
        (lib / rel).write_text(text)
    (lib / "pkg/core.py").chmod(0o755)
    shutil.copytree(lib, ref)
    (lib / "linked").symlink_to(lib / "pkg", target_is_directory=True)
    # compileall's output, made at the same path (a .pyc names its source's path).
    lib.rename(tmp_path / "kept")
    ref.rename(lib)
    subprocess.run([sys.executable, "-m", "compileall", "-q", "--invalidation-mode",
                    "unchecked-hash", str(lib)], check=True)
    expected = _tree(lib)
    shutil.rmtree(lib)
    (tmp_path / "kept").rename(lib)

    assert "4 compiled, 0 from the cache" in _compile_venv(lib, cache)
    assert _tree(lib) == expected
    # A fresh tree as the next build installs it: everything from the cache, the same bytes.
    for pyc in lib.rglob("__pycache__"):
        shutil.rmtree(pyc)
    (lib / "pkg/core.py").write_text("def f():\n    return 2\n")
    out = _compile_venv(lib, cache)
    assert "1 compiled, 3 from the cache" in out, out
    got = _tree(lib)
    assert got.keys() == expected.keys()
    changed = {k for k in got if got[k] != expected[k]}
    assert changed == {"pkg/core.py", f"pkg/__pycache__/core.{sys.implementation.cache_tag}.pyc"}


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


# ---------------------------------------------------------------------------------------------
# venv_layers.py: the torch family in layers of its own, the venv still one environment.

import json  # noqa: E402
import os  # noqa: E402

import venv_layers  # noqa: E402

SITE = "lib/python3.13/site-packages"


def _dist(site: Path, name: str, version: str, files: dict[str, bytes]) -> None:
    """A minimal installed distribution: its files, METADATA and a RECORD listing them."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    for rel, data in files.items():
        path = (site / rel).resolve() if rel.startswith("..") else site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    rows = [f"{rel},sha256=x,{len(data)}" for rel, data in files.items()]
    rows += [f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]
    (info / "RECORD").write_text("\n".join(rows) + "\n")


def _venv(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    site = venv / SITE
    site.mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (site / "_virtualenv.py").write_text("# made by uv venv, owned by no distribution\n")
    _dist(site, "nvidia-big", "1", {"nvidia/big/lib/libbig.so.1": b"b" * 9000})
    _dist(site, "nvidia-mid", "1", {"nvidia/mid/lib/libmid.so.1": b"m" * 5000})
    _dist(site, "nvidia-small", "1", {"nvidia/small/lib/libsmall.so.1": b"s" * 3000})
    _dist(site, "torch", "2.15.0", {"torch/__init__.py": b"x = 1\n",
                                    "torch/lib/libtorch.so": b"t" * 4000,
                                    "../../../bin/torchrun": b"#!python\n"})
    (site / "torch/__pycache__").mkdir()
    (site / "torch/__pycache__/__init__.cpython-313.pyc").write_bytes(b"pyc")
    os.symlink("libtorch.so", site / "torch/lib/libtorch.so.2")
    with (site / "torch-2.15.0.dist-info/RECORD").open("a") as f:
        f.write("torch/lib/libtorch.so.2,,\n")
    _dist(site, "sympy", "1.14", {"sympy/__init__.py": b"s = 1\n"})
    # Named in requirements.lock too: the lock installs it, it stays with the rest of the venv.
    _dist(site, "typing-extensions", "4.15.0", {"typing_extensions.py": b"te = 1\n"})
    return venv


def _layer(layers: Path, name: str, venv: Path) -> Path:
    """Where a layer holds the venv: at the venv's own path, as the image has it."""
    return layers / name / venv.relative_to("/")


def _tree(root: Path) -> dict[str, bytes]:
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            out[rel] = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
    return out


def test_lock_names_are_the_pinned_distributions() -> None:
    lock = """# This file was autogenerated by uv
annotated-types==0.8.0 \\
    --hash=sha256:aa
numpy==2.4.6 ; python_full_version < '3.12' \\
    --hash=sha256:bb
numpy==2.5.5 ; python_full_version >= '3.12' \\
    --hash=sha256:cc
Typing_Extensions==4.16.0 \\
    --hash=sha256:dd
    # via pydantic
"""
    assert venv_layers.lock_names(lock) == ["annotated-types", "numpy", "typing-extensions"]


def test_split_links_the_torch_family_into_balanced_layers(tmp_path: Path) -> None:
    venv, layers = _venv(tmp_path), tmp_path / "layers"
    leave = tmp_path / "names.txt"
    leave.write_text("typing-extensions\nnumpy\n")
    before = _tree(venv)
    assert venv_layers.main(["x", "split", str(venv), str(layers), "--leave", str(leave),
                             "--groups", "nvidia-*=2"]) == 0
    manifest = json.loads((layers / "manifest.json").read_text())
    assert set(manifest["layers"]) == {"nvidia-1", "nvidia-2", "torch"}
    # Largest first, each into the smallest layer so far: 9000 | 5000 + 3000.
    assert manifest["layers"]["nvidia-1"]["distributions"] == ["nvidia-big"]
    assert manifest["layers"]["nvidia-2"]["distributions"] == ["nvidia-mid", "nvidia-small"]
    assert manifest["layers"]["torch"]["distributions"] == ["sympy", "torch"]
    # Hard links (the same inode) at the venv's own path, byte code with its source's owner,
    # symlinks as links; every directory the split made has mtime 0 (reproducible layers).
    lib = f"{SITE}/nvidia/big/lib/libbig.so.1"
    assert (_layer(layers, "nvidia-1", venv) / lib).stat().st_ino == (venv / lib).stat().st_ino
    torch = _layer(layers, "torch", venv)
    assert (torch / SITE / "torch/__pycache__/__init__.cpython-313.pyc").is_file()
    assert (torch / SITE / "torch/lib/libtorch.so.2").is_symlink()
    made = [Path(d) for d, _, _ in os.walk(layers / "torch")]
    assert len(made) > 5 and all(d.stat().st_mtime == 0 for d in made)
    files = manifest["files"]
    assert f"{SITE}/typing_extensions.py" not in files  # the lock's
    assert "bin/torchrun" not in files and f"{SITE}/_virtualenv.py" not in files
    assert files[f"{SITE}/torch/lib/libtorch.so"][0] == "torch"
    # split only links: the venv is untouched, and still one environment.
    assert _tree(venv) == before


def test_drop_leaves_the_rest_and_layers_plus_rest_are_the_venv(tmp_path: Path) -> None:
    venv, layers = _venv(tmp_path), tmp_path / "layers"
    before = _tree(venv)
    assert venv_layers.main(["x", "split", str(venv), str(layers), "--groups", "nvidia-*=3"]) == 0
    assert venv_layers.main(["x", "drop", str(venv), str(layers)]) == 0
    rest = _tree(venv)
    assert not (venv / SITE / "torch").exists() and not (venv / SITE / "nvidia").exists()
    assert f"{SITE}/_virtualenv.py" in rest and "bin/torchrun" in rest
    assert f"{SITE}/typing_extensions.py" not in rest  # without --leave: the family's
    # What the image gets: the layers copied in order, then the rest. It is the tested venv.
    merged: dict[str, bytes] = {}
    for name in ["nvidia-1", "nvidia-2", "nvidia-3", "torch"]:
        merged.update(_tree(_layer(layers, name, venv)))
    merged.update(rest)
    assert f"{SITE}/typing_extensions.py" in merged
    assert merged == before


def test_drop_refuses_when_a_layer_file_changed_after_the_split(tmp_path: Path, capsys) -> None:
    venv, layers = _venv(tmp_path), tmp_path / "layers"
    assert venv_layers.main(["x", "split", str(venv), str(layers)]) == 0
    # What a later step rewriting a torch-family file does: a new file at the same path.
    target = venv / SITE / "sympy/__init__.py"
    target.unlink()
    target.write_bytes(b"s = 2\n")
    assert venv_layers.main(["x", "drop", str(venv), str(layers)]) == 1
    err = capsys.readouterr().err
    assert f"{SITE}/sympy/__init__.py (in layer torch)" in err
    assert (venv / SITE / "torch/__init__.py").exists()  # nothing was removed


def test_split_refuses_layers_left_empty(tmp_path: Path, capsys) -> None:
    venv, layers = _venv(tmp_path), tmp_path / "layers"
    assert venv_layers.main(["x", "split", str(venv), str(layers), "--groups", "nvidia-*=4"]) == 1
    assert "nvidia-4" in capsys.readouterr().err


def test_trim_leaves_listed_files_and_drops_named_ones(tmp_path: Path) -> None:
    venv, layers = _venv(tmp_path), tmp_path / "layers"
    site = venv / SITE
    (site / "torch/include").mkdir()
    (site / "torch/include/t.h").write_text("int t;\n")
    with (site / "torch-2.15.0.dist-info/RECORD").open("a") as f:
        f.write("torch/include/t.h,,\n")
    (site / "sqlalchemy/testing").mkdir(parents=True)
    (site / "sqlalchemy/testing/fixtures.py").write_text("x = 1\n")
    (site / "numpy/include").mkdir(parents=True)
    (site / "numpy/include/n.h").write_text("int n;\n")
    assert venv_layers.main(["x", "split", str(venv), str(layers)]) == 0
    run = [sys.executable, str(DOCKER_DIR / "trim_venv.py"), str(venv),
           "--leave-listed", str(layers / "manifest.json")]
    result = subprocess.run(run + ["--drop", "sqlalchemy/testing"], capture_output=True,
                            text=True, check=True)
    assert "--drop sqlalchemy/testing" in result.stdout
    assert (site / "torch/include/t.h").exists()  # listed: the torch stage's trim decided
    assert not (site / "numpy/include").exists()  # the lock's: trimmed here
    assert not (site / "sqlalchemy/testing").exists()
    missing = subprocess.run(run + ["--drop", "nothing/here*"], capture_output=True, text=True)
    assert missing.returncode == 2
    assert "matches nothing" in missing.stderr


# ---------------------------------------------------------------------------------------------
# distroless.py: which Debian packages the distroless runtime keeps.

import distroless  # noqa: E402

STATUS = """Package: python3
Status: install ok installed
Depends: python3.13 (>= 3.13.5-1~), libpython3-stdlib (= 3.13.5-1)
Pre-Depends: python3-minimal (= 3.13.5-1)

Package: python3-minimal
Status: install ok installed
Depends: dpkg (>= 1.13.20)
Pre-Depends: python3.13-minimal (>= 3.13.5-1~)

Package: python3.13
Status: install ok installed
Depends: libc6 (>= 2.38), media-types | mime-support

Package: python3.13-minimal
Status: install ok installed
Pre-Depends: libc6 (>= 2.38)

Package: libpython3-stdlib
Status: install ok installed
Depends: libpython3.13-stdlib

Package: libpython3.13-stdlib
Status: install ok installed
Depends: libc6, libdb5.3t64,
 tzdata

Package: libdb5.3
Status: install ok installed
Provides: libdb5.3t64

Package: media-types
Status: install ok installed

Package: tzdata
Status: install ok installed
Depends: debconf (>= 0.5) | debconf-2.0

Package: debconf
Status: install ok installed
Pre-Depends: perl-base (>= 5.20.1-3~)

Package: perl-base
Status: install ok installed

Package: dpkg
Status: install ok installed
Depends: tar (>= 1.28-1)

Package: tar
Status: install ok installed

Package: libc6
Status: install ok installed
Depends: libgcc-s1

Package: libgcc-s1
Status: install ok installed

Package: bash
Status: install ok installed

Package: removed-one
Status: deinstall ok config-files
"""


def test_distroless_keeps_the_closure_without_the_maintainer_tools() -> None:
    installed = distroless.parse_status(STATUS)
    assert "removed-one" not in installed  # only installed packages count
    keep = distroless.closure({"python3"}, installed, {"dpkg", "debconf"})
    assert keep == {"python3", "python3-minimal", "python3.13", "python3.13-minimal",
                    "libpython3-stdlib", "libpython3.13-stdlib", "libdb5.3", "media-types",
                    "tzdata", "libc6", "libgcc-s1"}
    # Without --without, the maintainer-script dependencies come along, perl and tar included.
    assert {"dpkg", "tar", "debconf", "perl-base"} <= distroless.closure(
        {"python3"}, installed, set())
    # A continued field (`Depends: …,\n tzdata`) is read whole.
    assert "tzdata" in distroless.field(installed["libpython3.13-stdlib"], "Depends")


def _status(python: str, libc: str) -> str:
    return (
        f"Package: libc6\nStatus: install ok installed\nArchitecture: arm64\nVersion: {libc}\n\n"
        f"Package: python3.{python.split('.')[1]}-minimal\nStatus: install ok installed\n"
        f"Version: {python}-2+deb13u5\n\n"
        "Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n"
    )


def test_target_python_names_the_targets_platform_and_version(tmp_path, capsys) -> None:
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    status = tmp_path / "status"
    status.write_text(_status(f"{here}.5", "2.41-12+deb13u5"))
    assert target_python.main(["x", str(status), "arm64"]) == 0
    assert capsys.readouterr().out.split() == [
        "--python-platform", "aarch64-manylinux_2_40", "--python-version", f"{here}.5"]
    status.write_text(_status(f"{here}.2", "2.36-9+deb12u10"))
    assert target_python.main(["x", str(status), "amd64"]) == 0
    assert "x86_64-manylinux_2_36" in capsys.readouterr().out


def test_target_python_refuses_another_python_or_architecture(tmp_path, capsys) -> None:
    status = tmp_path / "status"
    status.write_text(_status("3.99.0", "2.41-12"))
    assert target_python.main(["x", str(status), "arm64"]) == 2
    assert "the target's Python is 3.99.0" in capsys.readouterr().err
    assert target_python.main(["x", str(status), "s390x"]) == 2
    assert "TARGETARCH=s390x" in capsys.readouterr().err
    status.write_text("Package: libc6\nStatus: install ok installed\nVersion: 2.41-1\n")
    assert target_python.main(["x", str(status), "arm64"]) == 2
    assert "exactly one python3.X-minimal" in capsys.readouterr().err


# --- wheel_tags.py --------------------------------------------------------------------------

import base64  # noqa: E402
import hashlib  # noqa: E402

import wheel_tags  # noqa: E402


def _dist_info(venv: Path, name: str, tag: str) -> Path:
    info = venv / "lib/python3.13/site-packages" / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    wheel = f"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: {tag}\n"
    (info / "WHEEL").write_text(wheel)
    (info / "RECORD").write_text(
        f"{name}/__init__.py,sha256=abc,3\n{info.name}/WHEEL,sha256=old,{len(wheel)}\n"
        f"{info.name}/RECORD,,\n"
    )
    return info


def test_wheel_tags_rewrites_sbsa_to_aarch64_and_its_record_entry(tmp_path: Path) -> None:
    sbsa = _dist_info(tmp_path, "nvidia_x", "py3-none-manylinux2014_sbsa")
    other = _dist_info(tmp_path, "plain", "py3-none-manylinux2014_aarch64")
    before = (other / "WHEEL").read_text(), (other / "RECORD").read_text()
    assert wheel_tags.main(["wheel_tags.py", str(tmp_path)]) == 0
    wheel = (sbsa / "WHEEL").read_bytes()
    assert wheel.decode().endswith("Tag: py3-none-manylinux2014_aarch64\n")
    digest = base64.urlsafe_b64encode(hashlib.sha256(wheel).digest()).rstrip(b"=").decode()
    record = (sbsa / "RECORD").read_text().splitlines()
    assert record == [
        "nvidia_x/__init__.py,sha256=abc,3",
        f"{sbsa.name}/WHEEL,sha256={digest},{len(wheel)}",
        f"{sbsa.name}/RECORD,,",
    ]
    assert ((other / "WHEEL").read_text(), (other / "RECORD").read_text()) == before
