"""Ask the served FAQ matcher (``faq_match``) questions: a library function and a command.

    python -m faq.client "how do I remove an item from an array?" [--grpc] [--url HOST:PORT]

:func:`ask` is what other code imports (the web app, load tests): it sends all questions in
one request (the server batches them) and returns the ranked matches per question.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import typer
from tritonclient.utils import InferenceServerException

from serving.client import Endpoint

MODEL_NAME = "faq_match"
OUTPUTS = ("FAQ_ID", "SCORE", "FAQ_QUESTION", "FAQ_ANSWER")


@dataclass(frozen=True)
class Match:
    """One original question matched to a user's question."""

    rank: int
    faq_id: int
    score: float
    question: str
    answer: str


def _text_input(endpoint: Endpoint, questions: Sequence[str]) -> object:
    data = np.array([[q.encode("utf-8")] for q in questions], dtype=object)
    tensor = endpoint.module().InferInput("TEXT", list(data.shape), "BYTES")
    tensor.set_data_from_numpy(data)
    return tensor


def ask(
    endpoint: Endpoint,
    questions: Sequence[str],
    top_k: int | None = None,
    *,
    client: object | None = None,
    timeout_s: float | None = None,
) -> list[list[Match]]:
    """Match every question; returns, per question, its matches best first.

    ``top_k`` keeps only the first matches (the server returns ``faq.specs.TOP_K``). Pass a
    ``client`` from ``endpoint.client()`` to reuse its connection across calls. Server-side
    errors (bad input, unknown model) raise ``tritonclient.utils.InferenceServerException``.
    """
    if not questions:
        return []
    owned = client is None
    client = client or endpoint.client()
    module = endpoint.module()
    try:
        kwargs: dict[str, object] = {"headers": endpoint.headers() or None}
        if timeout_s is not None:
            kwargs["client_timeout"] = timeout_s
        result = client.infer(  # type: ignore[attr-defined]
            MODEL_NAME,
            [_text_input(endpoint, questions)],
            outputs=[module.InferRequestedOutput(name) for name in OUTPUTS],
            **kwargs,
        )
    finally:
        if owned:
            client.close()  # type: ignore[attr-defined]
    ids, scores, texts, answers = (result.as_numpy(name) for name in OUTPUTS)
    matches = []
    for row in range(len(questions)):
        count = ids.shape[1] if top_k is None else min(top_k, ids.shape[1])
        matches.append(
            [
                Match(
                    rank=i + 1,
                    faq_id=int(ids[row, i]),
                    score=float(scores[row, i]),
                    question=_text(texts[row, i]),
                    answer=_text(answers[row, i]),
                )
                for i in range(count)
            ]
        )
    return matches


def _unreachable(exc: InferenceServerException) -> bool:
    """gRPC reports a refused connection as an exception with status UNAVAILABLE."""
    return str(exc.status()) in ("StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED")


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def main(
    questions: Annotated[list[str], typer.Argument(help="one or more questions")],
    url: Annotated[str | None, typer.Option(help="server, host:port or https://host")] = None,
    grpc: Annotated[bool, typer.Option("--grpc", help="use gRPC instead of HTTP")] = False,
    api_key: Annotated[
        str | None, typer.Option(envvar="TRITON_API_KEY", help="API key header, if the server asks")
    ] = None,
    token: Annotated[
        str | None, typer.Option(envvar="TRITON_BEARER_TOKEN", help="Bearer token (Azure ML)")
    ] = None,
    top_k: Annotated[int | None, typer.Option(min=1, help="show at most this many matches")] = None,
    width: Annotated[int, typer.Option(help="characters of question/answer text to show")] = 90,
) -> None:
    """Ask the FAQ matcher on a Triton server and print the matches as a table."""
    from rich.console import Console
    from rich.table import Table

    endpoint = Endpoint.from_options(url, grpc, api_key, token)
    protocol = endpoint.protocol
    console = Console()
    try:
        results = ask(endpoint, questions, top_k)
    except Exception as exc:
        if isinstance(exc, InferenceServerException) and not _unreachable(exc):
            console.print(f"[red]error from {endpoint.address} ({protocol}):[/red] {exc.message()}")
            raise typer.Exit(1) from None
        # connection refused, TLS, DNS: say where we tried
        console.print(f"[red]cannot reach Triton at {endpoint.address} ({protocol}):[/red] {exc}")
        console.print("start it with `make serve` (or `make demo`)")
        raise typer.Exit(2) from None
    for question, matches in zip(questions, results, strict=True):
        table = Table(title=f"Q: {_shorten(question, width)}", title_justify="left", show_lines=True)
        table.add_column("#", justify="right")
        table.add_column("FAQ id", justify="right")
        table.add_column("score", justify="right")
        table.add_column("original question")
        table.add_column("answer")
        for m in matches:
            table.add_row(
                str(m.rank),
                str(m.faq_id),
                f"{m.score:.3f}",
                _shorten(m.question, width),
                _shorten(m.answer, width),
            )
        console.print(table)


def app() -> None:
    typer.run(main)


if __name__ == "__main__":
    app()
