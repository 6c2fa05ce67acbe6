"""The probes `cargo xtask smoke` runs inside the images (xtask/src/smoke/probes/*.py).

The xtask embeds each file with `include_str!` and runs it as `python3 -c <source> ARGS…`; these
tests run them the same way with this Python, against a tmp dir and a local HTTP server, and
check the JSON the xtask's judge reads (xtask/src/smoke/judge.rs).
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import wave
from collections.abc import Iterator
from importlib.metadata import version
from io import BytesIO
from pathlib import Path

import pytest

PROBES = Path(__file__).resolve().parents[2] / "xtask" / "src" / "smoke" / "probes"


def run_probe(name: str, *args: str) -> object:
    """Runs a probe as the xtask does and parses its one line of JSON.

    From the probes' own directory: `python3 -c` puts the working directory first on sys.path,
    so a probe named like a module of the standard library (an `http.py` shadows the `http`
    package that urllib imports) fails here.
    """
    source = (PROBES / name).read_text()
    result = subprocess.run(
        [sys.executable, "-c", source, *args],
        capture_output=True, text=True, check=True, cwd=PROBES, timeout=60,
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return json.loads(lines[0])


def test_every_probe_compiles_and_is_tested() -> None:
    names = sorted(p.name for p in PROBES.glob("*.py"))
    assert names == ["forbidden_packages.py", "forbidden_paths.py", "http_request.py",
                     "pytest_file.py", "shared_libraries.py", "torch_libraries.py"]
    for name in names:
        compile((PROBES / name).read_text(), name, "exec")
        # `python3 -c` puts the working directory first on sys.path: no probe may shadow a module.
        assert Path(name).stem not in sys.stdlib_module_names, name


class _Service(http.server.BaseHTTPRequestHandler):
    """/health answers JSON, /starting 503, /text plain text; POSTs are recorded."""

    uploads: list[tuple[str, bytes]] = []

    def do_GET(self) -> None:
        if self.path == "/health":
            self._answer(200, "application/json", b'{"status": "ok", "n": 1.0}')
        elif self.path == "/starting":
            self._answer(503, "application/json", b'{"status": "starting"}')
        else:
            self._answer(200, "text/plain", "plain text é".encode())

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.uploads.append((self.headers["Content-Type"], body))
        self._answer(200, "application/json", b'{"received": true}')

    def _answer(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def service() -> Iterator[str]:
    _Service.uploads = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Service)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_probe_reports_status_json_and_body(service: str) -> None:
    ok = run_probe("http_request.py", "GET", f"{service}/health", "0", "5.0")
    assert ok == {"status": 200, "error": None, "json": {"status": "ok", "n": 1.0},
                  "body": '{"status": "ok", "n": 1.0}'}
    starting = run_probe("http_request.py", "GET", f"{service}/starting", "0", "5.0")
    assert starting["status"] == 503
    assert starting["json"] == {"status": "starting"}
    text = run_probe("http_request.py", "GET", f"{service}/text", "0", "5.0")
    assert text["status"] == 200
    assert text["json"] is None
    assert text["body"] == "plain text é"


def test_http_probe_uploads_a_wav_as_multipart(service: str) -> None:
    answer = run_probe("http_request.py", "POST", f"{service}/analyze", "0.5", "5.0")
    assert answer["status"] == 200 and answer["json"] == {"received": True}
    [(kind, body)] = _Service.uploads
    assert kind == "multipart/form-data; boundary=xtask-smoke-boundary"
    head, rest = body.split(b"\r\n\r\n", 1)
    assert b'name="file"; filename="smoke.wav"' in head
    wav_bytes = rest.removesuffix(b"\r\n--xtask-smoke-boundary--\r\n")
    with wave.open(BytesIO(wav_bytes)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        assert w.getnframes() == 8000


def test_http_probe_without_an_answer_says_why() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
        port = sock.getsockname()[1]
        answer = run_probe("http_request.py", "GET", f"http://127.0.0.1:{port}/", "0", "5.0")
    assert answer["status"] is None
    assert answer["error"].startswith("URLError: ") and "refused" in answer["error"]
    assert answer["json"] is None and answer["body"] == ""


def test_paths_probe_tells_present_from_absent(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    paths = [str(tmp_path / p) for p in ["file", "dir", "dangling", "missing", "file/under"]]
    answer = run_probe("forbidden_paths.py", *paths)
    assert answer == {"present": paths[:3], "unreadable": []}
    assert run_probe("forbidden_paths.py") == {"present": [], "unreadable": []}


def test_paths_probe_reports_what_it_cannot_tell(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every directory: run the app tests as a non-root user")
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "inside").write_text("x")
    locked.chmod(0)
    try:
        answer = run_probe("forbidden_paths.py", str(locked / "inside"))
    finally:
        locked.chmod(0o700)
    assert answer == {"present": [], "unreadable": [f"{locked / 'inside'} (Permission denied)"]}


def test_packages_probe_matches_normalised_names() -> None:
    found = run_probe("forbidden_packages.py", "PyTest", "python_multipart", "no-such-package-*")
    assert found == sorted([f"pytest {version('pytest')}",
                            f"python-multipart {version('python-multipart')}"])
    assert run_probe("forbidden_packages.py", "no-such-*") == []


def _extension_module() -> Path:
    """An extension module of this Python that links a system library (sqlite3's)."""
    import _sqlite3  # noqa: PLC0415

    return Path(_sqlite3.__file__)


def test_shared_libraries_resolve_needed_entries_and_report_the_hosts(tmp_path: Path) -> None:
    import shutil  # noqa: PLC0415

    ext = _extension_module()
    shutil.copy(ext, tmp_path / ext.name)
    (tmp_path / "not-elf.so").write_text("text")
    out = run_probe("shared_libraries.py", str(tmp_path))
    assert out == {"elf_files": 1, "unresolved": [], "host": []}
    # A soname named as the host's is reported apart, whether or not it is found.
    out = run_probe("shared_libraries.py", "--host", "libsqlite3.so.0", str(tmp_path))
    needed = [h["needed"] for h in out["host"]]
    assert out["unresolved"] == [] and ("libsqlite3.so.0" in needed or needed == []), out


def test_shared_libraries_name_an_entry_that_resolves_nowhere(tmp_path: Path) -> None:
    import shutil  # noqa: PLC0415

    ext = _extension_module()
    data = bytearray(ext.read_bytes())
    # Rename the NEEDED string in place (same length), as a removed library looks to ld.so.
    at = data.find(b"libsqlite3.so.0\0")
    if at < 0:
        pytest.skip("this Python's _sqlite3 does not link libsqlite3.so.0")
    data[at:at + 15] = b"libsqlitX.so.0\0"[:15]
    (tmp_path / ext.name).write_bytes(bytes(data))
    out = run_probe("shared_libraries.py", str(tmp_path))
    assert out["elf_files"] == 1
    assert out["unresolved"] == [{"file": str(tmp_path / ext.name), "needed": "libsqlitX.so.0"}]


def test_torch_libraries_fails_where_torch_is_not_installed() -> None:
    source = (PROBES / "torch_libraries.py").read_text()
    result = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True,
                            cwd=PROBES, timeout=60)
    try:
        import torch  # noqa: F401, PLC0415
    except ImportError:
        assert result.returncode != 0
        assert "No module named 'torch'" in result.stderr
    else:
        assert json.loads(result.stdout)["problems"] == []
def test_pytest_probe_runs_one_file_with_pytest_from_a_site_directory(tmp_path: Path) -> None:
    """As in the container: pytest from SITE (here this venv's), no conftest, nothing written."""
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "conftest.py").write_text("raise ImportError('a conftest the image cannot import')\n")
    (tests / "helper.py").write_text("VALUE = 3\n")
    (tests / "test_x.py").write_text(
        "import helper\n\ndef test_a():\n    assert helper.VALUE == 3\n\n"
        "def test_b():\n    assert True\n"
    )
    site = str(Path(pytest.__file__).resolve().parents[1])
    source = (PROBES / "pytest_file.py").read_text()
    result = subprocess.run(
        [sys.executable, "-c", source, site, str(tests / "test_x.py")],
        capture_output=True, text=True, cwd=PROBES, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("2 passed"), result.stdout
    assert sorted(p.name for p in tests.iterdir()) == ["conftest.py", "helper.py", "test_x.py"]

    (tests / "test_y.py").write_text("import pytest\npytest.importorskip('no_such_module')\n")
    result = subprocess.run(
        [sys.executable, "-c", source, site, str(tests / "test_y.py")],
        capture_output=True, text=True, cwd=PROBES, timeout=120,
    )
    assert "1 skipped" in result.stdout and "no_such_module" in result.stdout, result.stdout
