from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from voxserve.backend import NumpyBackend
from voxserve.config import Settings
from voxserve.main import create_app


@pytest.fixture
def make_client(tmp_path: Path):
    clients: list[TestClient] = []

    def factory(data_dir: Path | None = None, **overrides) -> TestClient:
        settings = Settings(data_dir=data_dir or tmp_path / "data", **overrides)
        client = TestClient(create_app(settings, backend=NumpyBackend()))
        client.__enter__()  # runs the lifespan (schema creation)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> Iterator[TestClient]:
    yield make_client()
