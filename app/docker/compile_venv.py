"""Byte code for a venv, compiled only for the files no earlier build compiled the same.

    python compile_venv.py DIR --cache CACHE

Writes what `python -m compileall -q -j 0 --invalidation-mode unchecked-hash DIR` writes, the same
files byte for byte: for every .py file compileall compiles, the .pyc comes from CACHE when an
earlier build compiled the same source at the same path with the same Python, else it is compiled
(in parallel when there are many) and kept in CACHE. A .pyc depends on nothing else, so a lock
change compiles only the files of the packages whose files changed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import importlib.util
import os
import py_compile
import sys

MODE = py_compile.PycInvalidationMode.UNCHECKED_HASH
# Below this many misses one process compiles them: starting a pool costs more.
POOL_FROM = 64


def sources(root: str) -> list[str]:
    """The .py files compileall compiles under root: sorted, recursively, neither __pycache__
    nor symlinked directories."""
    found = []
    for name in sorted(os.listdir(root)):
        if name == "__pycache__":
            continue
        path = os.path.join(root, name)
        if os.path.isdir(path):
            if not os.path.islink(path):
                found += sources(path)
        elif name.endswith(".py") and os.path.isfile(path):
            found.append(path)
    return found


def key(path: str, source: bytes) -> str:
    """What a .pyc depends on: the Python, the mode, the path it names and the source."""
    digest = hashlib.sha256(importlib.util.MAGIC_NUMBER)
    digest.update(f"{sys.implementation.cache_tag}\0{sys.flags.optimize}\0{MODE.name}\0"
                  f"{path}\0".encode())
    digest.update(source)
    return digest.hexdigest()


def write(path: str, data: bytes, mode: int) -> None:
    """Writes atomically, as py_compile does (concurrent builds share the cache)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_EXCL | os.O_CREAT | os.O_WRONLY, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def compile_one(path: str) -> str:
    cfile = importlib.util.cache_from_source(path)
    py_compile.compile(path, cfile, doraise=True, invalidation_mode=MODE)
    return cfile


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--cache", required=True, help="directory of .pyc files by key")
    args = parser.parse_args()

    misses: list[tuple[str, str]] = []
    hits = 0
    for path in sources(args.dir):
        with open(path, "rb") as f:
            k = key(path, f.read())
        cached = os.path.join(args.cache, k[:2], k + ".pyc")
        try:
            with open(cached, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            misses.append((path, cached))
            continue
        # py_compile's mode: the source's, writable by its owner, never executable.
        mode = (os.stat(path).st_mode | 0o200) & 0o666
        write(importlib.util.cache_from_source(path), data, mode)
        hits += 1

    paths = [path for path, _ in misses]
    if len(paths) >= POOL_FROM:
        with concurrent.futures.ProcessPoolExecutor() as pool:
            cfiles = list(pool.map(compile_one, paths, chunksize=16))
    else:
        cfiles = [compile_one(path) for path in paths]
    for cfile, (_, cached) in zip(cfiles, misses):
        with open(cfile, "rb") as f:
            write(cached, f.read(), 0o644)
    print(f"byte code for {args.dir}: {len(misses)} compiled, {hits} from the cache")
    return 0


if __name__ == "__main__":
    sys.exit(main())
