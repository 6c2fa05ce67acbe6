"""The HTTP API. `uvicorn voxserve.main:app` serves the app built from the environment."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse

from . import __version__
from .analysis import analyze
from .audio import AudioError, decode_wav
from .backend import BACKEND, Backend
from .config import Settings
from .db import Analysis, Database, utcnow

# uvicorn configures this logger; messages show up next to its own start-up lines.
log = logging.getLogger("uvicorn.error")

# Room for the multipart envelope (boundaries, part headers) around the file itself.
MULTIPART_SLACK_BYTES = 64 * 1024

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def error_body(code: str, detail: str) -> dict[str, str]:
    return {"error": code, "detail": detail}


class _BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Rejects request bodies above `max_body` with 413 before they are spooled to disk.

    A declared Content-Length is refused up front. A chunked body is counted while it streams
    in; once it passes the limit the app's own response (FastAPI turns the aborted form parse
    into a 400) is replaced by the 413.
    """

    def __init__(self, app: Any, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def _reject(self, send: Send) -> None:
        body = json.dumps(
            error_body("too_large", f"request body exceeds {self.max_body} bytes")
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_body:
                    await self._reject(send)
                    return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # swallow the app's response; ours follows
            started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            pass
        if exceeded and not started:
            await self._reject(send)


def create_app(settings: Settings | None = None, backend: Backend | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    backend = backend or BACKEND
    db = Database(settings.data_dir)

    @asynccontextmanager
    async def lifespan(_: FastAPI):  # type: ignore[no-untyped-def]
        try:
            db.ensure_schema()
        except Exception as exc:  # noqa: BLE001 - reported by /health, retried there
            log.error("database at %s not usable yet: %s", db.path, str(exc).splitlines()[0])
        log.info("voxserve %s, backend %s on %s, data %s", __version__, backend.name,
                 backend.device, settings.data_dir)
        yield

    app = FastAPI(title="voxserve", version=__version__, lifespan=lifespan)
    app.add_middleware(BodySizeLimit, max_body=settings.max_upload_bytes + MULTIPART_SLACK_BYTES)
    app.state.settings = settings
    app.state.db = db
    app.state.backend = backend

    @app.exception_handler(AudioError)
    async def audio_error(_: Request, exc: AudioError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status)

    @app.get("/health")
    def health() -> JSONResponse:
        body: dict[str, Any] = {
            "status": "ok",
            "db": "ok",
            "backend": backend.name,
            "device": backend.device,
            "version": __version__,
        }
        try:
            db.probe_write()
        except Exception as exc:  # noqa: BLE001 - any failure means "cannot write"
            reason = f"database not writable at {db.path}: {type(exc).__name__}: {exc}"
            body.update(status="error", db="error", reason=reason.splitlines()[0][:500])
            return JSONResponse(body, status_code=503)
        return JSONResponse(body)

    @app.post("/v1/analyze", status_code=201)
    def analyze_upload(file: UploadFile = File(...)) -> JSONResponse:  # noqa: B008
        limit = settings.max_upload_bytes
        data = file.file.read(limit + 1)
        if len(data) > limit:
            raise AudioError(413, "too_large", f"the file exceeds {limit} bytes")
        audio = decode_wav(data)
        result = analyze(audio, backend, settings.vad_threshold_dbfs)
        row = Analysis(
            created_at=utcnow(),
            filename=(file.filename or None) and file.filename[:255],
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            duration_s=result.duration_s,
            sample_rate=result.sample_rate,
            channels=result.channels,
            sample_width_bits=result.sample_width_bits,
            frames=result.frames,
            rms_dbfs=result.rms_dbfs,
            peak_dbfs=result.peak_dbfs,
            vad_threshold_dbfs=result.vad_threshold_dbfs,
            vad_frame_ms=result.vad_frame_ms,
            segments=[s.as_dict() for s in result.segments],
            backend=result.backend,
        )
        db.add_analysis(row)
        return JSONResponse(row.as_dict(), status_code=201,
                            headers={"Location": f"/v1/analyses/{row.id}"})

    @app.get("/v1/analyses/{analysis_id}")
    def get_analysis(analysis_id: int) -> JSONResponse:
        row = db.get_analysis(analysis_id)
        if row is None:
            return JSONResponse(error_body("not_found", f"no analysis {analysis_id}"), 404)
        return JSONResponse(row.as_dict())

    @app.get("/v1/analyses")
    def list_analyses(limit: int = Query(20, ge=1, le=100)) -> JSONResponse:  # noqa: B008
        rows = db.recent_analyses(limit)
        return JSONResponse({"items": [r.as_dict() for r in rows], "count": len(rows)})

    return app


app = create_app()
