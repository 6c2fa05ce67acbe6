"""The forbidden-paths probe: `python3 -c <this file> PATH…` in the container, run as root so
that restricted directories are seen too.

Prints one JSON line: `present` (the PATHs that exist, dangling symlinks included) and
`unreadable` (`PATH (reason)` for those whose existence cannot be told).
"""

from __future__ import annotations

import json
import os
import sys


def facts(paths: list[str]) -> dict:
    present, unreadable = [], []
    for p in paths:
        try:
            os.lstat(p)
            present.append(p)
        except (FileNotFoundError, NotADirectoryError):
            pass
        except OSError as e:
            unreadable.append(f"{p} ({e.strerror})")
    return {"present": present, "unreadable": unreadable}


if __name__ == "__main__":
    print(json.dumps(facts(sys.argv[1:])))
