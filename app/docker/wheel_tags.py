"""Build-time: NVIDIA's aarch64 wheels that call their platform `sbsa` inside.

    python wheel_tags.py VENV

Some of NVIDIA's aarch64 wheels (nvidia-cusparselt-cu13 0.8.1) are published as
`…-manylinux2014_aarch64.whl`, but their `.dist-info/WHEEL` says `Tag: py3-none-manylinux2014_sbsa`
("Server Base System Architecture", NVIDIA's name for arm64 servers), a platform no installer
knows: `uv pip check` then reports the distribution as "built for a different platform" and the
build stops. This rewrites such tags to the `aarch64` the file name says (and the WHEEL entry of
RECORD to the new hash and size), prints each change, and changes nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys
from pathlib import Path

SBSA = re.compile(r"^(Tag: \S+-manylinux[0-9_]*)_sbsa$", re.M)


def record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    changed = 0
    for wheel in sorted(Path(argv[1]).glob("lib/python3*/site-packages/*.dist-info/WHEEL")):
        text = wheel.read_text()
        fixed = SBSA.sub(r"\1_aarch64", text)
        if fixed == text:
            continue
        wheel.write_text(fixed)
        record = wheel.with_name("RECORD")
        rel = f"{wheel.parent.name}/WHEEL"
        data = fixed.encode()
        lines = [
            f"{rel},{record_hash(data)},{len(data)}" if line.split(",")[0] == rel else line
            for line in record.read_text().splitlines()
        ]
        record.write_text("\n".join(lines) + "\n")
        print(f"{wheel.parent.name}: WHEEL tag manylinux*_sbsa -> _aarch64")
        changed += 1
    print(f"wheel tags: {changed} distribution(s) rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
