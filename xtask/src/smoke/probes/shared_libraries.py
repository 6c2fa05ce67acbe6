"""smoke probe `shared libraries resolve`: every ELF file under the roots, each DT_NEEDED.

    python3 -c <this> [--host SONAME ...] ROOT...

Resolution as the dynamic loader does it (ld.so(8)), read from the files, nothing executed: a
NEEDED name with a slash is a path; else DT_RPATH (only without DT_RUNPATH), DT_RUNPATH, the
directories of /etc/ld.so.conf (and its includes), then the default library directories, with
$ORIGIN and $LIB expanded. Found means a file of that name is there and is an ELF file of the
same class and machine. Names given with --host are the host's to provide at run time (the GPU
driver's libcuda, say); they are reported apart. Prints one JSON object: the number of ELF files
read, `unresolved` [{file, needed}] and `host` [{file, needed}]. Only the filesystem each root
is on is walked: mounts below it (/proc, /sys, /dev, tmpfs, volumes) are not the image.
"""

from __future__ import annotations

import glob
import json
import os
import struct
import sys

DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_STRTAB, DT_STRSZ = 1, 15, 29, 5, 10
PT_LOAD, PT_DYNAMIC = 1, 2


def read_elf(path):
    """(class, machine, needed, rpath, runpath) of an ELF with a dynamic section, else None."""
    try:
        with open(path, "rb") as f:
            ident = f.read(64)
            if len(ident) < 52 or ident[:4] != b"\x7fELF":
                return None
            is64 = ident[4] == 2
            end = "<" if ident[5] == 1 else ">"
            if is64:
                e_type, machine = struct.unpack(end + "HH", ident[16:20])
                phoff, = struct.unpack(end + "Q", ident[32:40])
                phentsize, phnum = struct.unpack(end + "HH", ident[54:58])
            else:
                e_type, machine = struct.unpack(end + "HH", ident[16:20])
                phoff, = struct.unpack(end + "I", ident[28:32])
                phentsize, phnum = struct.unpack(end + "HH", ident[42:46])
            f.seek(phoff)
            table = f.read(phentsize * phnum)
            loads, dynamic = [], None
            for i in range(phnum):
                ph = table[i * phentsize:(i + 1) * phentsize]
                if is64:
                    p_type, _fl, off, vaddr, _pa, filesz = struct.unpack(end + "IIQQQQ", ph[:40])
                else:
                    p_type, off, vaddr, _pa, filesz = struct.unpack(end + "IIIII", ph[:20])
                if p_type == PT_LOAD:
                    loads.append((vaddr, off, filesz))
                elif p_type == PT_DYNAMIC:
                    dynamic = (off, filesz)
            if dynamic is None:
                return (is64, machine, [], [], [])
            f.seek(dynamic[0])
            raw = f.read(dynamic[1])
            entsize = 16 if is64 else 8
            fmt = end + ("qQ" if is64 else "iI")
            entries = []
            for i in range(len(raw) // entsize):
                tag, val = struct.unpack(fmt, raw[i * entsize:(i + 1) * entsize])
                if tag == 0:
                    break
                entries.append((tag, val))
            strtab = next((v for t, v in entries if t == DT_STRTAB), None)
            strsz = next((v for t, v in entries if t == DT_STRSZ), 0)
            if strtab is None:
                return (is64, machine, [], [], [])
            # DT_STRTAB is an address: map it to a file offset through the LOAD segments.
            offset = next((off + strtab - vaddr for vaddr, off, size in loads
                           if vaddr <= strtab < vaddr + size), strtab)
            f.seek(offset)
            strings = f.read(strsz)

            def s(i):
                return strings[i:strings.index(b"\0", i)].decode(errors="replace")

            needed = [s(v) for t, v in entries if t == DT_NEEDED]
            rpath = [p for t, v in entries if t == DT_RPATH for p in s(v).split(":") if p]
            runpath = [p for t, v in entries if t == DT_RUNPATH for p in s(v).split(":") if p]
            return (is64, machine, needed, rpath, runpath)
    except (OSError, struct.error, ValueError, IndexError):
        return None


def ld_so_conf(path="/etc/ld.so.conf", seen=None):
    seen = set() if seen is None else seen
    dirs = []
    if path in seen or not os.path.isfile(path):
        return dirs
    seen.add(path)
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line.startswith("include "):
                for inc in sorted(glob.glob(line.split(None, 1)[1])):
                    dirs += ld_so_conf(inc, seen)
            elif line:
                dirs.append(line)
    return dirs


def main(argv):
    host = set()
    roots = []
    it = iter(argv[1:])
    for a in it:
        if a == "--host":
            host.add(next(it))
        else:
            roots.append(a)
    # The loader's built-in directories come after ld.so.conf's (on Debian the multiarch ones).
    system = ld_so_conf() + [f"/{p}lib/{a}" for p in ("", "usr/") for a in (
        os.uname().machine + "-linux-gnu",)] + ["/lib64", "/usr/lib64", "/lib", "/usr/lib"]
    cache = {}

    def elf(path):
        if path not in cache:
            cache[path] = read_elf(path)
        return cache[path]

    checked, unresolved, provided = 0, [], []
    for root in roots:
        # The image's own filesystem only: not /proc, /sys, /dev or volumes mounted over it.
        device = os.lstat(root).st_dev
        for dirpath, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if os.lstat(os.path.join(dirpath, d)).st_dev == device]
            for name in files:
                path = os.path.join(dirpath, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                info = elf(path)
                if info is None:
                    continue
                is64, machine, needed, rpath, runpath = info
                checked += 1
                origin = os.path.dirname(os.path.realpath(path))

                def expand(d):
                    return (d.replace("$ORIGIN", origin).replace("${ORIGIN}", origin)
                            .replace("$LIB", "lib64" if is64 else "lib")
                            .replace("${LIB}", "lib64" if is64 else "lib"))

                search = ([] if runpath else [expand(d) for d in rpath]) + \
                    [expand(d) for d in runpath] + system
                for lib in needed:
                    cands = [lib] if "/" in lib else [os.path.join(d, lib) for d in search]
                    ok = False
                    for c in cands:
                        if os.path.exists(c):
                            other = elf(os.path.realpath(c))
                            if other and other[0] == is64 and other[1] == machine:
                                ok = True
                                break
                    if not ok:
                        entry = {"file": path, "needed": lib}
                        (provided if lib in host else unresolved).append(entry)
    print(json.dumps({"elf_files": checked, "unresolved": unresolved, "host": provided}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
