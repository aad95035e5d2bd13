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

from faq.specs import MODEL_NAME, OUTPUTS, TEXT
from serving.client import ClientError, Endpoint, Unreachable, as_text, infer


@dataclass(frozen=True)
class Match:
    """One original question matched to a user's question."""

    rank: int
    faq_id: int
    score: float  # the probability that this original is the one asked about
    question: str
    answer: str
    matched: bool = True  # the service answers the question; False: only suggestions (faq.scope)


SUGGESTIONS = 3  # what a client shows when there is no good match: "did you mean..."


def ask(
    endpoint: Endpoint,
    questions: Sequence[str],
    top_k: int | None = None,
    *,
    client: object | None = None,
    timeout_s: float | None = None,
    retry_s: float = 0.0,
) -> list[list[Match]]:
    """Match every question; returns, per question, its matches best first.

    ``top_k`` keeps only the first matches (the server returns ``faq.specs.TOP_K``). Pass a
    ``client`` from ``endpoint.client()`` to reuse its connection across calls. Errors raise a
    :class:`serving.client.ClientError` (``RejectedInput`` for a question the server refuses);
    ``retry_s`` rides through a server restart (``serving.client.infer``).
    """
    if not questions:
        return []
    texts = np.array([[q.encode("utf-8")] for q in questions], dtype=object)
    result = infer(
        endpoint, MODEL_NAME, {TEXT: texts}, OUTPUTS, client=client, timeout_s=timeout_s, retry_s=retry_s
    )
    ids, scores, originals, answers, matched = (result[name] for name in OUTPUTS)
    count = ids.shape[1] if top_k is None else min(top_k, ids.shape[1])
    return [
        [
            Match(
                rank=i + 1,
                faq_id=int(ids[row, i]),
                score=float(scores[row, i]),
                question=as_text(originals[row, i]),
                answer=as_text(answers[row, i]),
                matched=bool(matched[row, 0]),
            )
            for i in range(count)
        ]
        for row in range(len(questions))
    ]


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
    retry_s: Annotated[float, typer.Option(help="keep retrying while the server restarts, seconds")] = 30.0,
) -> None:
    """Ask the FAQ matcher on a Triton server and print the matches as a table."""
    from rich.console import Console
    from rich.table import Table

    endpoint = Endpoint.from_options(url, grpc, api_key, token)
    protocol = endpoint.protocol
    console = Console()
    try:
        results = ask(endpoint, questions, top_k, retry_s=retry_s)
    except Unreachable as exc:  # connection refused, TLS, DNS: say where we tried
        console.print(f"[red]cannot reach Triton at {endpoint.address} ({protocol}):[/red] {exc}")
        console.print("start it with `make serve` (or `make demo`)")
        raise typer.Exit(2) from None
    except ClientError as exc:
        console.print(f"[red]{type(exc).__name__} from {endpoint.address} ({protocol}):[/red] {exc}")
        raise typer.Exit(1) from None
    for question, matches in zip(questions, results, strict=True):
        title = f"Q: {_shorten(question, width)}"
        if matches and not matches[0].matched:
            title += "\nNo good match in the FAQ. Did you mean one of these?"
            matches = matches[:SUGGESTIONS]
        table = Table(title=title, title_justify="left", show_lines=True)
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
