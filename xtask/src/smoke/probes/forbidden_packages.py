"""The forbidden-packages probe: `python3 -c <this file> GLOB…` in the container.

Prints one JSON list, sorted: `NAME VERSION` of every installed distribution whose name matches
one of the GLOBs, names compared normalised as in PEP 503 (`Nvidia_CuBLAS` matches `nvidia-*`).
"""

from __future__ import annotations

import fnmatch
import json
import re
import sys
from importlib.metadata import distributions


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def matching(globs: list[str]) -> list[str]:
    patterns = [normalized(g) for g in globs]
    found = set()
    for dist in distributions():
        name = dist.metadata["Name"]
        if name and any(fnmatch.fnmatchcase(normalized(name), p) for p in patterns):
            found.add(f"{name} {dist.version}")
    return sorted(found)


if __name__ == "__main__":
    print(json.dumps(matching(sys.argv[1:])))
