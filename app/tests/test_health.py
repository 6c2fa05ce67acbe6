from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

import voxserve


def test_health_ok_and_really_writes(client, tmp_path: Path) -> None:
    for _ in range(2):
        resp = client.get("/health")
        assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "ok"
    assert body["db"] == "ok"
    assert body["backend"] == "numpy"
    assert body["version"] == voxserve.__version__
    with sqlite3.connect(tmp_path / "data" / "voxserve.sqlite3") as conn:
        (checks,) = conn.execute("SELECT checks FROM health_probe WHERE id = 1").fetchone()
    assert checks == 2


def test_health_503_when_data_dir_cannot_be_created(make_client, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the data directory should be")
    client = make_client(data_dir=blocker / "data")
    resp = client.get("/health")
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] == "error"
    assert body["db"] == "error"
    assert "not writable" in body["reason"]


def test_health_503_when_database_file_is_unwritable(make_client, tmp_path: Path) -> None:
    """The database path is taken by a directory: opening it for writing fails (even as root)."""
    data = tmp_path / "data"
    (data / "voxserve.sqlite3").mkdir(parents=True)
    client = make_client(data_dir=data)
    resp = client.get("/health")
    assert resp.status_code == 503
    assert resp.json()["db"] == "error"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_health_503_when_data_dir_is_read_only(make_client, tmp_path: Path) -> None:
    data = tmp_path / "data"
    client = make_client(data_dir=data)
    assert client.get("/health").status_code == 200
    (data / "voxserve.sqlite3").chmod(0o444)
    data.chmod(0o555)
    try:
        resp = client.get("/health")
    finally:
        data.chmod(0o755)
    assert resp.status_code == 503
    assert resp.json()["db"] == "error"


def test_health_recovers_when_storage_appears(make_client, tmp_path: Path) -> None:
    blocker = tmp_path / "late"
    blocker.write_text("not yet a directory")
    client = make_client(data_dir=blocker)
    assert client.get("/health").status_code == 503
    blocker.unlink()
    assert client.get("/health").status_code == 200


def test_version_matches_pyproject() -> None:
    import tomllib

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    assert tomllib.loads(pyproject.read_text())["project"]["version"] == voxserve.__version__


def test_healthcheck_module_reports_unreachable_server(monkeypatch, capsys) -> None:
    from voxserve import healthcheck

    monkeypatch.setenv("VOXSERVE_HEALTHCHECK_URL", "http://127.0.0.1:9/health")
    assert healthcheck.main() == 1
    assert capsys.readouterr().out
