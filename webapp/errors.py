"""Turn what goes wrong between the page and Triton into plain words for the person using it.

The clients already say what kind of failure it was (``serving.client``'s taxonomy); the page
maps each kind to one sentence that says what happened and what to do, with the server's reason
where it helps (a rejected image's), and keeps the raw text as ``detail`` for whoever debugs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from serving.client import NotReady, RejectedInput, Unauthorized, Unreachable, error_from


@dataclass
class UserError(Exception):
    """An error the page shows as it is: ``message`` is for people, ``code`` for the page's logic."""

    code: str
    message: str
    status_code: int = 400
    detail: str | None = None

    def __str__(self) -> str:
        return self.message

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail:
            body["detail"] = self.detail
        return body


SERVER_DOWN = "server_down"
MODEL_NOT_READY = "model_not_ready"
IMAGE_REJECTED = "image_rejected"
TEXT_TOO_LONG = "text_too_long"
UPLOAD_TOO_LARGE = "upload_too_large"
UNAUTHORIZED = "unauthorized"
BAD_REQUEST = "bad_request"
SERVER_ERROR = "server_error"


def server_down(url: str, detail: str | None = None) -> UserError:
    return UserError(
        SERVER_DOWN,
        f"The scoring server is not reachable at {url}. Start it with `make serve`, "
        "or check the Triton URL the web app was given.",
        503,
        detail,
    )


def text_too_long(length: int | None, limit: int) -> UserError:
    got = f" ({length} characters)" if length is not None else ""
    return UserError(
        TEXT_TOO_LONG,
        f"Your question is too long{got}: the limit is {limit} characters. Shorten it and try again.",
        413,
    )


def upload_too_large(limit: int, size: int | None = None) -> UserError:
    got = f" ({human_bytes(size)})" if size is not None else ""
    return UserError(
        UPLOAD_TOO_LARGE,
        f"The file is too large{got}: images up to {human_bytes(limit)} are accepted.",
        413,
    )


def human_bytes(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} bytes"


def translate(exc: BaseException, *, url: str, model: str, kind: str) -> UserError:
    """Map an error from a Triton call on ``model`` to a :class:`UserError`, by its type alone.

    The kind of failure comes from :func:`serving.client.error_from` (the clients' one taxonomy);
    ``kind`` says what was sent (``"image"`` or ``"text"``), so a rejection names it.
    """
    if isinstance(exc, UserError):
        return exc
    error = error_from(exc, model)
    raw = f"[{error.status}] {error.message}" if error.status else error.message
    if isinstance(error, Unreachable):
        return server_down(url, raw)
    if isinstance(error, Unauthorized):
        return UserError(
            UNAUTHORIZED,
            "The scoring server refused the request: it needs an API key. "
            "Start the web app with --api-key (or WEBAPP_API_KEY).",
            502,
            raw,
        )
    if isinstance(error, NotReady):
        return UserError(
            MODEL_NOT_READY,
            f"The model {model} is not ready on the scoring server (not loaded, still loading, or "
            "recovering). Check `make status`.",
            503,
            raw,
        )
    reason = error.message.rstrip(".") or "no reason given"
    if isinstance(error, RejectedInput) and kind == "image":
        return UserError(IMAGE_REJECTED, f"The image was rejected: {reason}.", 422, raw)
    if isinstance(error, RejectedInput):
        return UserError(BAD_REQUEST, f"The question was rejected: {reason}.", 422, raw)
    return UserError(SERVER_ERROR, f"Something went wrong while asking {model}: {reason}.", 502, raw)
