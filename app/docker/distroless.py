"""Build-time: a root filesystem of only the Debian packages the runtime needs, dpkg data kept.

    python3 distroless.py --owners-of DIR ...                           > packages.txt
    python3 distroless.py ROOTFS --package PKG ... [--packages-from packages.txt]
                          [--without PKG ...] [--copy PATH ...]

Run in a Debian stage (`runtime-debian`); the result is copied into a `FROM scratch` stage.
Kept: the packages named with --package or --packages-from — the latter made by --owners-of:
those owning a shared library that an ELF file under DIR needs, as `ldd` resolves it (the
venv's native code needs libstdc++ and libgcc_s, which python3 does not); two steps, so that
the slow copy re-runs only when that list changes — and everything they Depend or Pre-Depend
on, recursively —
except the --without packages, which kept ones depend on only for their maintainer scripts
(dpkg, debconf, mawk, the openssl command): nothing installs or configures packages at run time.
Of those, every file dpkg lists, plus the byte code Debian compiles at install time for the
listed .py files, plus the --copy paths (files, directories or symlinks made outside dpkg: the
passwd and group entries of the service user, /etc/ld.so.cache, the generated CA bundle, /data).

Left out: every other package, with its files and its dpkg data — the shells (bash, dash), apt,
dpkg's tools, perl, coreutils and the rest of the Essential set that only package maintenance
and interactive use need. /var/lib/dpkg/status (and the info/*.list files) keep exactly the
packages that are there, so `trivy image` still sees them — and only them.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

STATUS = Path("/var/lib/dpkg/status")
INFO = Path("/var/lib/dpkg/info")


def parse_status(text: str) -> dict[str, str]:
    """Installed packages: name -> its stanza of /var/lib/dpkg/status."""
    packages = {}
    for stanza in text.strip().split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): ?(.*)$", stanza, flags=re.M))
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            packages[fields["Package"]] = stanza
    return packages


def field(stanza: str, name: str) -> str:
    match = re.search(rf"^{name}: ?(.*(?:\n .*)*)", stanza, flags=re.M)
    return match.group(1).replace("\n", " ") if match else ""


def dependencies(stanza: str, installed: dict[str, str], provides: dict[str, str]) -> list[str]:
    """The installed packages a stanza's Depends and Pre-Depends name (first installed
    alternative of `a | b`, virtual packages through Provides)."""
    out = []
    for part in (field(stanza, "Depends") + "," + field(stanza, "Pre-Depends")).split(","):
        for alternative in part.split("|"):
            name = alternative.strip().split(" ")[0].split(":")[0]
            if not name:
                continue
            if name in installed:
                out.append(name)
                break
            if name in provides:
                out.append(provides[name])
                break
    return out


def closure(roots: set[str], installed: dict[str, str], without: set[str]) -> set[str]:
    provides = {}
    for name, stanza in installed.items():
        for virtual in field(stanza, "Provides").split(","):
            if virtual.strip():
                provides.setdefault(virtual.strip().split(" ")[0], name)
    keep, todo = set(), sorted(roots)
    while todo:
        name = todo.pop()
        if name in keep or name in without:
            continue
        keep.add(name)
        todo.extend(dependencies(installed[name], installed, provides))
    return keep


def info_files(package: str, suffix: str) -> list[Path]:
    """dpkg's `<package>.<suffix>` or `<package>:<arch>.<suffix>` files."""
    return sorted(p for p in INFO.glob(f"{package}*.{suffix}")
                  if p.name[:-len(suffix) - 1].split(":")[0] == package)


def owners() -> dict[str, str]:
    """Real path of every file dpkg lists -> its package."""
    owner = {}
    for listing in INFO.glob("*.list"):
        package = listing.name[:-len(".list")].split(":")[0]
        for line in listing.read_text(errors="replace").splitlines():
            if line and line != "/.":
                owner.setdefault(os.path.realpath(line), package)
    return owner


def needed_libraries(dirs: list[Path]) -> set[str]:
    """The system libraries (outside the given dirs) that ELF files there load, as ldd sees it."""
    libs: set[str] = set()
    for top in dirs:
        for root, _dirs, files in os.walk(top):
            for name in files:
                path = Path(root) / name
                if path.is_symlink() or not (name.endswith(".so") or ".so." in name):
                    continue
                with path.open("rb") as f:
                    if f.read(4) != b"\x7fELF":
                        continue
                out = subprocess.run(["ldd", str(path)], capture_output=True, text=True).stdout
                for lib in re.findall(r"=> (/\S+)", out):
                    if not any(Path(lib).is_relative_to(d) for d in dirs):
                        libs.add(os.path.realpath(lib))
    return libs


def copy_entry(src: Path, rootfs: Path) -> int:
    """Copies one file, symlink or directory (not its contents) with mode, owner and times."""
    dst = rootfs / src.relative_to("/")
    if os.path.lexists(dst):
        return 0
    for parent in reversed(src.relative_to("/").parents):
        if str(parent) != "." and not os.path.lexists(rootfs / parent):
            copy_entry(Path("/") / parent, rootfs)
    st = src.lstat()
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISDIR(st.st_mode):
        dst.mkdir()
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    else:
        shutil.copy2(src, dst, follow_symlinks=False)
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
    return st.st_size if stat.S_ISREG(st.st_mode) else 0


def copy_tree(src: Path, rootfs: Path) -> int:
    size = copy_entry(src, rootfs)
    if src.is_dir() and not src.is_symlink():
        for root, dirs, files in os.walk(src):
            for name in sorted(dirs) + sorted(files):
                size += copy_entry(Path(root) / name, rootfs)
    return size


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("rootfs", type=Path, nargs="?")
    parser.add_argument("--owners-of", action="append", default=[], type=Path, metavar="DIR",
                        help="only print the packages owning the libraries ELF files in DIR need")
    parser.add_argument("--package", action="append", default=[], metavar="PKG")
    parser.add_argument("--packages-from", type=Path, metavar="FILE",
                        help="more --package names, one a line (a --owners-of output)")
    parser.add_argument("--without", action="append", default=[], metavar="PKG")
    parser.add_argument("--copy", action="append", default=[], type=Path, metavar="PATH")
    args = parser.parse_args(argv[1:])

    installed = parse_status(STATUS.read_text())
    if args.owners_of:
        owner = owners()
        libs = sorted(needed_libraries(args.owners_of))
        unowned = [lib for lib in libs if lib not in owner]
        if unowned:
            print("error: libraries ELF files there need that no package owns (copy them with "
                  "--copy): " + ", ".join(unowned), file=sys.stderr)
            return 1
        print("\n".join(sorted({owner[lib] for lib in libs})))
        return 0
    if args.rootfs is None:
        parser.error("ROOTFS is required unless --owners-of is given")
    roots = set(args.package)
    if args.packages_from:
        roots |= {line.strip() for line in args.packages_from.read_text().splitlines()
                  if line.strip()}
    missing = sorted(p for p in roots if p not in installed)
    if missing:
        print(f"error: not installed here: {', '.join(missing)}", file=sys.stderr)
        return 2
    keep = closure(roots, installed, set(args.without))

    args.rootfs.mkdir(parents=True)
    size = 0
    for package in sorted(keep):
        for listing in info_files(package, "list"):
            for line in listing.read_text(errors="replace").splitlines():
                if not line or line == "/.":
                    continue
                path = Path(line)
                if not (path.exists() or path.is_symlink()):
                    continue  # removed on purpose in an earlier step (see the Dockerfile)
                size += copy_entry(path, args.rootfs)
                # Debian byte-compiles Python modules at install time: the .pyc are no package's.
                if path.suffix == ".py":
                    for pyc in (path.parent / "__pycache__").glob(path.stem + ".*.pyc"):
                        size += copy_entry(pyc, args.rootfs)
    for path in args.copy:
        size += copy_tree(path, args.rootfs)

    # dpkg's database: the kept packages only, so a scanner reports what is there.
    dpkg = args.rootfs / "var/lib/dpkg"
    (dpkg / "info").mkdir(parents=True, exist_ok=True)
    (dpkg / "status").write_text("\n\n".join(installed[p] for p in sorted(keep)) + "\n")
    for package in sorted(keep):
        for suffix in ("list", "md5sums"):
            for f in info_files(package, suffix):
                shutil.copy2(f, dpkg / "info" / f.name)

    dropped = sorted(set(installed) - keep)
    kb = sum(int(field(installed[p], "Installed-Size") or 0) for p in dropped)
    print(f"distroless root: {len(keep)} packages, {size / 1e6:.1f} MB of files")
    print(f"  kept: {', '.join(sorted(keep))}")
    print(f"  left out ({len(dropped)}, {kb / 1000:.1f} MB installed): {', '.join(dropped)}")
    for tool in ("usr/bin/sh", "usr/bin/bash", "usr/bin/dash", "usr/bin/apt-get", "usr/bin/dpkg",
                 "usr/bin/perl"):
        if os.path.lexists(args.rootfs / tool):
            print(f"error: {tool} is in the distroless root: a kept package brings it",
                  file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
