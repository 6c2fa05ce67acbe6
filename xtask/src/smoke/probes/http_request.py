"""The smoke HTTP probe: `python3 -c <this file> METHOD URL WAV_SECONDS TIMEOUT` in the container.

Sends METHOD to URL and prints one JSON line: `status` (None without an answer), `error` (why
there was no answer), `json` (the parsed body, or None) and `body` (its first 2000 characters).
With WAV_SECONDS > 0 it uploads a generated WAV of that many seconds as the multipart field
`file`. Standard library only (the images have nothing else for sure), and no proxy: the service
is on 127.0.0.1 inside the container.
"""

from __future__ import annotations

import io
import json
import math
import struct
import sys
import urllib.error
import urllib.request
import wave

BOUNDARY = "xtask-smoke-boundary"


def wav(seconds: float, rate: int = 16000) -> bytes:
    """A 440 Hz tone, 16-bit mono."""
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
        for i in range(int(seconds * rate))
    )
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return buf.getvalue()


def request(method: str, url: str, seconds: float, timeout: float) -> dict:
    data, headers = None, {}
    if seconds > 0:
        data = (
            (
                f"--{BOUNDARY}\r\n"
                'Content-Disposition: form-data; name="file"; filename="smoke.wav"\r\n'
                "Content-Type: audio/wav\r\n\r\n"
            ).encode()
            + wav(seconds)
            + f"\r\n--{BOUNDARY}--\r\n".encode()
        )
        headers["Content-Type"] = f"multipart/form-data; boundary={BOUNDARY}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    out: dict = {"status": None, "error": None}
    body = b""
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with opener.open(req, timeout=timeout) as r:
            out["status"], body = r.status, r.read()
    except urllib.error.HTTPError as e:
        out["status"], body = e.code, e.read()
    except Exception as e:  # noqa: BLE001 - any failure is the answer: no answer, and why
        out["error"] = f"{type(e).__name__}: {e}"
    text = body.decode("utf-8", "replace")
    try:
        out["json"] = json.loads(text)
    except ValueError:
        out["json"] = None
    out["body"] = text[:2000]
    return out


if __name__ == "__main__":
    method, url, seconds, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    print(json.dumps(request(method, url, seconds, timeout)))
