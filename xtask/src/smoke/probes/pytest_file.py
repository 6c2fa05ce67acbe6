"""The pytest probe: `python3 -c <this file> SITE FILE` in the container.

Runs the test file FILE with the image's own Python and packages (its torch, its numpy), pytest
imported from SITE (a read-only mount: pytest is not in the images). No conftest.py (the app's
needs test-only packages), no cache, no bytecode written: the mounts are read-only. Prints
pytest's report, whose last line is the summary (`6 passed in 0.52s`); exits with pytest's code.
"""

from __future__ import annotations

import os
import sys


def main(site: str, path: str) -> int:
    sys.path.insert(0, site)
    sys.dont_write_bytecode = True
    import pytest

    return int(
        pytest.main(
            [path, "-q", "-rs", "--color=no", "--noconftest", "-p", "no:cacheprovider",
             "--rootdir", os.path.dirname(path)]
        )
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
