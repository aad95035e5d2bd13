"""The ASGI app: one static page and a JSON API in front of Triton.

The browser only ever talks to this app; the app talks to Triton through tritonclient. That
keeps the API key on the server, lets the app refuse oversized uploads and over-long questions
before anything reaches Triton, and turns Triton's errors into sentences.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faq.client import SUGGESTIONS
from webapp.backend import Backend, TritonBackend, as_dicts, unreachable_status
from webapp.errors import (
    BAD_REQUEST,
    SERVER_DOWN,
    SERVER_ERROR,
    UserError,
    text_too_long,
    upload_too_large,
)
from webapp.settings import WebAppSettings

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Room for the multipart boundary and headers around the file itself.
MULTIPART_OVERHEAD = 64 * 1024


def error_response(error: UserError, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error.to_json(), **extra}, status_code=error.status_code)


class BodySizeLimit:
    """Refuse request bodies over a limit while they arrive, before any of it is parsed.

    A declared ``Content-Length`` over the limit is answered at once; a body without one
    (chunked) is counted as it streams in and cut off as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, limits: dict[str, tuple[int, UserError]]) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.limits:
            await self.app(scope, receive, send)
            return
        limit, error = self.limits[scope["path"]]
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await error_response(error)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise dataclasses.replace(error)  # a fresh exception per request
            return message

        await self.app(scope, limited_receive, send)


def create_app(settings: WebAppSettings | None = None, backend: Backend | None = None) -> FastAPI:
    """Build the app; tests pass a fake ``backend``, the command line the real one."""
    settings = settings or WebAppSettings()
    backend = backend or TritonBackend(settings)
    app = FastAPI(title="Triton scoring stack: example web app", docs_url="/api/docs", redoc_url=None)
    app.state.settings = settings
    app.state.backend = backend
    question_body_limit = settings.max_question_chars * 4 + 1024  # UTF-8 and JSON quoting
    app.add_middleware(
        BodySizeLimit,
        limits={
            "/api/classify": (
                settings.max_upload_bytes + MULTIPART_OVERHEAD,
                upload_too_large(settings.max_upload_bytes),
            ),
            "/api/faq": (question_body_limit, text_too_long(None, settings.max_question_chars)),
        },
    )

    @app.exception_handler(UserError)
    async def _user_error(_: Request, exc: UserError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # still JSON with a sentence, so the page never shows a bare "Internal Server Error"
        message = f"The web app failed unexpectedly ({type(exc).__name__}); see its log."
        return error_response(UserError(SERVER_ERROR, message, 500, str(exc)))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = str(jsonable_encoder(exc.errors()))
        return error_response(UserError(BAD_REQUEST, "The request was not understood.", 400, detail))

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/api/config")
    async def config() -> dict[str, Any]:
        """What the page needs to lay itself out and check limits before sending."""
        return {
            "triton_url": settings.triton_url,
            "faq_model": settings.faq_model,
            "image_models": [
                {"name": m, "note": settings.model_notes.get(m, "")} for m in settings.image_models
            ],
            "max_upload_bytes": settings.max_upload_bytes,
            "max_question_chars": settings.max_question_chars,
            "top_k": settings.top_k,
        }

    @app.get("/api/samples")
    async def samples() -> dict[str, Any]:
        """Photos that ship in installed packages, so the page can be tried without a file."""
        return {
            "samples": [
                {"name": name, "url": f"/api/samples/{name}{path.suffix}"}
                for name, path in sample_photos().items()
            ]
        }

    @app.get("/api/samples/{filename}")
    async def sample(filename: str) -> FileResponse:
        path = sample_photos().get(Path(filename).stem)
        if path is None:
            raise UserError(BAD_REQUEST, f"There is no sample photo called {filename}.", 404)
        return FileResponse(path)

    @app.get("/api/status")
    async def status() -> JSONResponse:
        try:
            body = await run_in_threadpool(backend.status)
        except UserError as exc:
            body = unreachable_status(settings.triton_url, settings.faq_model, settings.image_models, exc)
            return JSONResponse(body, status_code=exc.status_code if exc.code == SERVER_DOWN else 502)
        return JSONResponse(body)

    @app.post("/api/faq")
    async def faq(request: Request) -> dict[str, Any]:
        # The body is read here, not by FastAPI, so that a cut-off body keeps its plain message.
        try:
            payload = json.loads(await request.body())
            text = payload["text"]
            if not isinstance(text, str):
                raise TypeError(text)
        except (ValueError, KeyError, TypeError) as exc:
            message = 'Send the question as JSON: {"text": "your question"}.'
            raise UserError(BAD_REQUEST, message, 400) from exc
        text = text.strip()
        if len(text) > settings.max_question_chars:
            raise text_too_long(len(text), settings.max_question_chars)
        if not text:
            return {
                "text": text,
                "model": settings.faq_model,
                "matches": [],
                "matched": False,
                "latency_ms": 0.0,
            }
        started = time.perf_counter()
        matches = await run_in_threadpool(backend.ask, text, settings.top_k)
        latency_ms = (time.perf_counter() - started) * 1000
        matched = bool(matches) and matches[0].matched
        return {
            "text": text,
            "model": settings.faq_model,
            "matched": matched,  # False: "no good match, did you mean..." with the first three
            "matches": as_dicts(matches if matched else matches[:SUGGESTIONS]),
            "latency_ms": round(latency_ms, 1),
        }

    @app.post("/api/classify")
    async def classify(request: Request) -> JSONResponse:
        form = await request.form(max_files=1, max_fields=4)
        upload = form.get("image")
        if not isinstance(upload, UploadFile):
            raise UserError(BAD_REQUEST, "Choose an image file to upload (form field `image`).", 400)
        data = await upload.read(settings.max_upload_bytes + 1)
        await form.close()
        if len(data) > settings.max_upload_bytes:
            raise upload_too_large(settings.max_upload_bytes)
        if not data:
            raise UserError(BAD_REQUEST, "The file is empty: choose an image file.", 400)
        started = time.perf_counter()
        results = await asyncio.gather(*(run_model(backend, m, data) for m in settings.image_models))
        body: dict[str, Any] = {
            "file": {"name": upload.filename, "bytes": len(data), "content_type": upload.content_type},
            "results": [{**r, "note": settings.model_notes.get(r["model"], "")} for r in results],
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        }
        errors = [r["error"] for r in results if r["error"]]
        if results and len(errors) == len(results):
            # Nothing answered: say why once, at the top, with the status of the first reason.
            first = next(e for e in errors)
            return JSONResponse({**body, "error": first}, status_code=first["status"])
        return JSONResponse(body)

    return app


SAMPLE_NAMES = ("coffee", "chelsea", "rocket", "astronaut", "motorcycle")


def sample_photos() -> dict[str, Path]:
    """The demo photos of ``imaging.samples`` that are installed here (none if it is missing)."""
    try:
        from imaging.samples import sample_path
    except ImportError:
        return {}
    photos: dict[str, Path] = {}
    for name in SAMPLE_NAMES:
        try:
            photos[name] = sample_path(name)
        except (KeyError, FileNotFoundError):
            continue
    return photos


async def run_model(backend: Backend, model: str, image: bytes) -> dict[str, Any]:
    """One image ensemble: its top-5 and latency, or its error in plain words (never raises)."""
    started = time.perf_counter()
    try:
        top = await run_in_threadpool(backend.classify, model, image)
    except UserError as exc:
        return {
            "model": model,
            "ok": False,
            "top": [],
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
            "error": {**exc.to_json(), "status": exc.status_code},
        }
    return {
        "model": model,
        "ok": True,
        "top": as_dicts(top),
        "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        "error": None,
    }
