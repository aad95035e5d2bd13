"""What the web app asks of Triton, behind one small interface.

The requests themselves are made by the project's clients (``faq.client.ask`` and
``imaging.client.classify``), so the page scores exactly as the command line does; this module
only adapts their results to JSON and reads the server's health, repository index and
inference statistics for the status strip. Tests swap :class:`TritonBackend` for a fake with
the same three methods.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from webapp.errors import UserError, translate
from webapp.settings import WebAppSettings


@dataclass(frozen=True)
class FaqMatch:
    faq_id: int
    score: float
    question: str
    answer: str
    matched: bool = True  # False: the FAQ does not answer the question; these are suggestions


@dataclass(frozen=True)
class ClassScore:
    class_id: int
    label: str
    score: float


class Backend(Protocol):
    """The three things the page needs; each raises :class:`UserError` with plain words."""

    def status(self) -> dict[str, Any]: ...

    def ask(self, text: str, top_k: int) -> list[FaqMatch]: ...

    def classify(self, model: str, image: bytes) -> list[ClassScore]: ...


_REQUIRED = object()


def _field(obj: Any, *names: str, default: Any = _REQUIRED) -> Any:
    """Read a field from a dataclass/namedtuple/dict whichever name the client used."""
    for name in names:
        if isinstance(obj, dict) and name in obj:
            return obj[name]
        if hasattr(obj, name):
            return getattr(obj, name)
    if default is not _REQUIRED:
        return default
    raise KeyError(f"{type(obj).__name__} has none of {names}")


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def to_faq_matches(matches: Iterable[Any]) -> list[FaqMatch]:
    return [
        FaqMatch(
            faq_id=int(_field(m, "faq_id", "id")),
            score=float(_field(m, "score", "probability")),
            question=_text(_field(m, "question", "faq_question")),
            answer=_text(_field(m, "answer", "faq_answer")),
            matched=bool(_field(m, "matched", default=True)),
        )
        for m in matches
    ]


def to_class_scores(scores: Iterable[Any]) -> list[ClassScore]:
    return [
        ClassScore(
            class_id=int(_field(s, "class_id", "id")),
            label=_text(_field(s, "label", "name")),
            score=float(_field(s, "score", "probability")),
        )
        for s in scores
    ]


def summarize_stats(entries: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per model: successes, failures, average request latency (ms) and last use, all versions."""
    out: dict[str, dict[str, Any]] = {}
    for entry in entries:
        name = entry.get("name", "")
        stats = entry.get("inference_stats", {})
        success = stats.get("success", {})
        fail = stats.get("fail", {})
        agg = out.setdefault(name, {"success": 0, "fail": 0, "_ns": 0, "last_inference_ms": 0})
        agg["success"] += int(success.get("count", 0))
        agg["fail"] += int(fail.get("count", 0))
        agg["_ns"] += int(success.get("ns", 0))
        agg["last_inference_ms"] = max(agg["last_inference_ms"], int(entry.get("last_inference", 0)))
    for agg in out.values():
        ns = agg.pop("_ns")
        agg["avg_ms"] = round(ns / agg["success"] / 1e6, 2) if agg["success"] else None
    return out


class TritonBackend:
    """The real thing: a Triton server at ``settings.triton_url``."""

    def __init__(self, settings: WebAppSettings) -> None:
        self.settings = settings
        self.endpoint = settings.endpoint()

    # -- inference: delegated to the project's clients ------------------------------------
    def ask(self, text: str, top_k: int) -> list[FaqMatch]:
        from faq.client import ask

        try:
            ranked = ask(self.endpoint, [text], top_k, retry_s=self.settings.retry_s)
        except Exception as exc:
            url, model = self.settings.triton_url, self.settings.faq_model
            raise translate(exc, url=url, model=model, kind="text") from exc
        return to_faq_matches(ranked[0])

    def classify(self, model: str, image: bytes) -> list[ClassScore]:
        from imaging.client import classify

        try:
            results = classify(self.endpoint, model, [image], retry_s=self.settings.retry_s)
        except Exception as exc:
            raise translate(exc, url=self.settings.triton_url, model=model, kind="image") from exc
        return to_class_scores(results[0])

    # -- status: health, repository index and statistics ----------------------------------
    def _client(self) -> Any:
        if self.endpoint.protocol == "http":
            timeout = min(self.settings.timeout_s, 5.0)
            return self.endpoint.client(connection_timeout=timeout, network_timeout=timeout)
        return self.endpoint.client()

    def status(self) -> dict[str, Any]:
        """Server health and every model's state; raises :class:`UserError` when the server is down."""
        url = self.settings.triton_url
        headers = self.endpoint.headers()
        as_json = {"as_json": True} if self.endpoint.protocol == "grpc" else {}
        started = time.perf_counter()
        try:
            client = self._client()
        except Exception as exc:
            raise translate(exc, url=url, model="(server)", kind="status") from exc
        try:
            try:
                live = bool(client.is_server_live(headers=headers))
                ready = bool(client.is_server_ready(headers=headers))
            except Exception as exc:
                raise translate(exc, url=url, model="(server)", kind="status") from exc
            index: list[dict[str, Any]] | None
            index_error = None
            try:
                raw = client.get_model_repository_index(headers=headers, **as_json)
                index = raw.get("models", []) if isinstance(raw, dict) else list(raw)
            except Exception as exc:  # the repository API may be restricted: degrade, don't fail
                index, index_error = None, translate(exc, url=url, model="(repository)", kind="status")
            try:
                raw_stats = client.get_inference_statistics(headers=headers, **as_json)
                stats = summarize_stats(raw_stats.get("model_stats", []))
            except Exception:
                stats = {}
            wanted = [self.settings.faq_model, *self.settings.image_models]
            model_ready = {name: self._is_model_ready(client, name, headers) for name in wanted}
        finally:
            with contextlib.suppress(Exception):
                client.close()
        return build_status(
            url=url,
            live=live,
            ready=ready,
            faq_model=self.settings.faq_model,
            image_models=self.settings.image_models,
            model_ready=model_ready,
            index=index,
            stats=stats,
            index_error=index_error.message if index_error else None,
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    @staticmethod
    def _is_model_ready(client: Any, name: str, headers: dict[str, str]) -> bool:
        try:
            return bool(client.is_model_ready(name, headers=headers))
        except Exception:
            return False


def build_status(
    *,
    url: str,
    live: bool,
    ready: bool,
    faq_model: str,
    image_models: Sequence[str],
    model_ready: dict[str, bool],
    index: list[dict[str, Any]] | None,
    stats: dict[str, dict[str, Any]],
    index_error: str | None = None,
    latency_ms: float | None = None,
) -> dict[str, Any]:
    """The JSON of ``GET /api/status``: the page's models first, then the rest of the repository."""
    by_name: dict[str, dict[str, Any]] = {}
    for entry in index or []:
        name = entry.get("name", "")
        # several versions: a READY one wins
        if name not in by_name or entry.get("state") == "READY":
            by_name[name] = entry

    def describe(name: str, role: str) -> dict[str, Any]:
        entry = by_name.get(name, {})
        ready_now = model_ready.get(name, entry.get("state") == "READY")
        state = entry.get("state") or ("READY" if ready_now else "NOT LOADED")
        return {
            "name": name,
            "role": role,
            "ready": bool(ready_now),
            "state": state,
            "reason": entry.get("reason") or None,
            "stats": stats.get(name),
        }

    models = [describe(faq_model, "faq"), *(describe(m, "image") for m in image_models)]
    shown = {m["name"] for m in models}
    others = [describe(name, "component") for name in sorted(by_name) if name not in shown]
    return {
        "server": {"url": url, "reachable": True, "live": live, "ready": ready},
        "models": models,
        "components": others,
        "index_error": index_error,
        "latency_ms": round(latency_ms, 1) if latency_ms is not None else None,
    }


def unreachable_status(
    url: str, faq_model: str, image_models: Sequence[str], error: UserError
) -> dict[str, Any]:
    """The status body when no server answered: every model unknown, the reason in plain words."""
    models = [
        {"name": name, "role": role, "ready": False, "state": "UNKNOWN", "reason": None, "stats": None}
        for name, role in [(faq_model, "faq"), *((m, "image") for m in image_models)]
    ]
    return {
        "server": {"url": url, "reachable": False, "live": False, "ready": False},
        "models": models,
        "components": [],
        "error": error.to_json(),
    }


def as_dicts(items: Iterable[Any]) -> list[dict[str, Any]]:
    return [asdict(item) for item in items]
