"""Container health probe: `python3 -m voxserve.healthcheck`, exit 0 when /health says ok.

Standard library only, so the image needs no curl and the probe stays cheap.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8000/health"


def check(url: str, timeout: float) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - fixed local URL
            body = json.load(resp)
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}: {exc.read(500).decode(errors='replace')}"
    except (OSError, ValueError) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    if body.get("status") != "ok":
        return False, f"unhealthy: {body}"
    return True, f"ok: backend={body.get('backend')} db={body.get('db')}"


def main() -> int:
    url = os.environ.get("VOXSERVE_HEALTHCHECK_URL", DEFAULT_URL)
    ok, message = check(url, timeout=float(os.environ.get("VOXSERVE_HEALTHCHECK_TIMEOUT", "4")))
    print(message)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
