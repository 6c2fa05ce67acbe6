"""Build-time trim of a virtual environment, run in the torch and deps stages before the import
test.

    python trim_venv.py VENV [--keep-headers-of PKG ...] [--no-strip-under DIR ...]
                             [--leave-listed MANIFEST] [--drop GLOB ...]

Removes what a running service never reads and reports what each step saved:
  * `tests`/`test` directories inside packages (test suites shipped in wheels). Directories named
    `testing` (numpy.testing, torch.testing: imported by the libraries themselves) are kept.
  * C/C++/CUDA headers, `include` directories and static archives (`*.a`): only needed to compile
    extensions, and the runtime image has no compiler. `--keep-headers-of triton` keeps the
    headers a JIT compiler needs when such a package is kept on purpose.
  * type stubs (`*.pyi`): read by type checkers only.
  * what `--drop GLOB` names: files or directories the Dockerfile lists, each with its reason.
    A glob that matches nothing fails the build, so a new wheel layout gets looked at.
  * symbol tables and debug info of shared objects (`strip --strip-unneeded`, or `$STRIP` — the
    target's binutils, e.g. aarch64-linux-gnu-strip, for a cross-installed venv), only for files that
    actually carry them, and never inside `*.libs/` directories: those hold libraries vendored by
    auditwheel, whose names embed their hashes and whose RPATH/SONAME wiring must stay exact.
    Libraries that embed GPU device code (CUDA/HIP fat binaries) are left as their vendor built
    them: GPU runtimes find kernels through such images and their symbols (stripped HIP libraries
    are known to break), and no GPU is at hand in the build to prove a stripped one still works.

`--leave-listed` names a manifest of `venv_layers.py split`: the files it lists were trimmed
already (in the torch stage) and belong to layers of their own, so they are not touched again.

The import test that follows in the same stage proves nothing needed was removed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path

TEST_DIR_NAMES = {"tests", "test"}
GPU_CODE_SECTIONS = {".nv_fatbin", "__nv_relfatbin", ".nvFatBinSegment", ".hip_fatbin",
                     ".hipFatBinSegment"}
HEADER_SUFFIXES = {".h", ".hh", ".hpp", ".hxx", ".cuh", ".inl", ".a"}
STUB_SUFFIXES = {".pyi"}


def tree_size(path: Path) -> int:
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(root, name)).st_size
    return total


def top_package(path: Path, site: Path) -> str:
    return path.relative_to(site).parts[0]


def elf_sections(path: Path) -> set[str] | None:
    """Section names of an ELF file, or None when it is not ELF (or unreadable)."""
    try:
        with path.open("rb") as f:
            ident = f.read(16)
            if ident[:4] != b"\x7fELF":
                return None
            is64, little = ident[4] == 2, ident[5] == 1
            end = "<" if little else ">"
            if is64:
                f.seek(0x28)
                (shoff,) = struct.unpack(end + "Q", f.read(8))
                f.seek(0x3A)
                shentsize, shnum, shstrndx = struct.unpack(end + "HHH", f.read(6))
            else:
                f.seek(0x20)
                (shoff,) = struct.unpack(end + "I", f.read(4))
                f.seek(0x2E)
                shentsize, shnum, shstrndx = struct.unpack(end + "HHH", f.read(6))
            if shoff == 0 or shnum == 0:
                return set()
            f.seek(shoff)
            table = f.read(shentsize * shnum)
            headers = [table[i * shentsize:(i + 1) * shentsize] for i in range(shnum)]
            strtab = headers[shstrndx]
            if is64:
                str_off, str_size = struct.unpack(end + "QQ", strtab[0x18:0x28])
            else:
                str_off, str_size = struct.unpack(end + "II", strtab[0x10:0x18])
            f.seek(str_off)
            names = f.read(str_size)
        sections = set()
        for h in headers:
            (name_off,) = struct.unpack(end + "I", h[:4])
            sections.add(names[name_off:names.index(b"\0", name_off)].decode(errors="replace"))
        return sections
    except (OSError, struct.error, ValueError, IndexError):
        return None


def mib(n: int) -> str:
    return f"{n / 2**20:8.1f} MiB"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("venv", type=Path)
    parser.add_argument("--keep-headers-of", action="append", default=[], metavar="PKG")
    parser.add_argument("--no-strip-under", action="append", default=[], metavar="DIR",
                        help="site-packages-relative directory whose libraries stay unstripped")
    parser.add_argument("--leave-listed", type=Path, metavar="MANIFEST",
                        help="venv_layers.py manifest whose files are left as they are")
    parser.add_argument("--drop", action="append", default=[], metavar="GLOB",
                        help="site-packages-relative file or directory glob to remove; each "
                             "must match, so a changed wheel layout is noticed")
    args = parser.parse_args()

    sites = sorted(args.venv.glob("lib/python3*/site-packages"))
    if len(sites) != 1:
        print(f"expected one site-packages under {args.venv}, found {sites}", file=sys.stderr)
        return 2
    site = sites[0]
    # Files already trimmed and split off into layers of their own, relative to site-packages,
    # and the directories holding them (never removed as a whole).
    leave: set[str] = set()
    if args.leave_listed:
        prefix = site.relative_to(args.venv).as_posix() + "/"
        listed = json.loads(args.leave_listed.read_text())["files"]
        leave = {rel[len(prefix):] for rel in listed if rel.startswith(prefix)}
    leave_dirs = {p.as_posix() for rel in leave for p in Path(rel).parents}
    before = tree_size(site)
    saved: Counter[str] = Counter()
    by_pkg: Counter[str] = Counter()

    # 0. what the Dockerfile names (each with its reason there)
    dropped: list[tuple[str, int, int]] = []
    for pattern in args.drop:
        matches = sorted(p for p in site.glob(pattern)
                         if p.relative_to(site).as_posix() not in leave | leave_dirs)
        if not matches:
            print(f"error: --drop {pattern!r} matches nothing under {site}: the wheel's layout "
                  "changed; check what it ships now and update the list", file=sys.stderr)
            return 2
        size = 0
        for path in matches:
            size += tree_size(path)
            by_pkg[top_package(path, site)] += tree_size(path)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        saved["named by --drop"] += size
        dropped.append((pattern, len(matches), size))

    # 1. test suites
    for root, dirs, _files in os.walk(site):
        for name in list(dirs):
            path = Path(root) / name
            if name in TEST_DIR_NAMES and path.parent != site and \
                    path.relative_to(site).as_posix() not in leave_dirs:
                size = tree_size(path)
                shutil.rmtree(path)
                dirs.remove(name)
                saved["test directories"] += size
                by_pkg[top_package(path, site)] += size

    # 2. headers, static archives and type stubs
    keep = set(args.keep_headers_of)
    for root, dirs, files in os.walk(site):
        here = Path(root)
        if here != site and top_package(here, site) in keep:
            dirs.clear()
            continue
        for name in list(dirs):
            path = here / name
            # an `include` directory holding Python code would be a package, not headers
            if name == "include" and not any(path.rglob("*.py")) and \
                    path.relative_to(site).as_posix() not in leave_dirs:
                size = tree_size(path)
                shutil.rmtree(path)
                dirs.remove(name)
                saved["headers and static libraries"] += size
                by_pkg[top_package(path, site)] += size
        for name in files:
            path = here / name
            if path.is_symlink() or path.relative_to(site).as_posix() in leave:
                continue
            if path.suffix in HEADER_SUFFIXES:
                what = "headers and static libraries"
            elif path.suffix in STUB_SUFFIXES:
                what = "type stubs"
            else:
                continue
            size = path.stat().st_size
            path.unlink()
            saved[what] += size
            by_pkg[top_package(path, site)] += size

    # 3. symbols of shared objects
    stripped = 0
    gpu_skipped: list[str] = []
    big_strips: list[tuple[int, str]] = []
    to_strip: list[tuple[Path, int]] = []
    for root, _dirs, files in os.walk(site):
        here = Path(root)
        rel = here.relative_to(site)
        if any(part.endswith(".libs") for part in rel.parts):
            continue
        if any(rel == Path(d) or Path(d) in rel.parents for d in args.no_strip_under):
            continue
        for name in files:
            if not (name.endswith(".so") or ".so." in name):
                continue
            path = here / name
            if path.is_symlink() or path.relative_to(site).as_posix() in leave:
                continue
            sections = elf_sections(path)
            if not sections or not (".symtab" in sections or any(
                    s.startswith(".debug") for s in sections)):
                continue
            if sections & GPU_CODE_SECTIONS:
                gpu_skipped.append(path.relative_to(site).as_posix())
                continue
            to_strip.append((path, path.stat().st_size))
    # One strip process for many files: a process per file costs more than the stripping.
    # STRIP names the target's strip where the venv is for another CPU (cross-installed).
    strip = os.environ.get("STRIP") or "strip"
    for i in range(0, len(to_strip), 200):
        batch = to_strip[i:i + 200]
        subprocess.run([strip, "--strip-unneeded", *(str(p) for p, _ in batch)], check=True)
        for path, size in batch:
            delta = size - path.stat().st_size
            saved["strip --strip-unneeded"] += delta
            by_pkg[top_package(path, site)] += delta
            stripped += 1
            big_strips.append((delta, path.relative_to(site).as_posix()))

    after = tree_size(site)
    print(f"trim {site}: {mib(before)} -> {mib(after)} (saved {mib(before - after)})")
    for what, size in saved.most_common():
        print(f"  {what:30s} {mib(size)}")
    for pattern, count, size in dropped:
        print(f"    --drop {pattern:52s} {mib(size)} ({count} {'entry' if count == 1 else 'entries'})")
    print(f"  shared objects stripped: {stripped}; largest:")
    for delta, rel in sorted(big_strips, reverse=True)[:6]:
        print(f"    {rel:60s} {mib(delta)}")
    if gpu_skipped:
        print(f"  not stripped, they carry GPU code: {len(gpu_skipped)}, e.g. "
              + ", ".join(gpu_skipped[:4]))
    print("  largest savings by package:")
    for pkg, size in by_pkg.most_common(8):
        print(f"    {pkg:28s} {mib(size)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
