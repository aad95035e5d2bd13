"""Classify image files with one of the image ensembles and print the top-5.

    python -m imaging.client --model efficientnet_lite0 photo.jpg [more.png ...]
    python -m imaging.client --grpc --url localhost:8001 --model resnet152_pytorch cat.png
    python -m imaging.client --samples            # the photos shipped in installed packages

:func:`classify` is the importable part (web app, load tests): encoded images in, one list
of :class:`~imaging.postprocess.Prediction` per image out, sent in batches of up to 8.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from imaging.networks import NETWORKS
from imaging.postprocess import Prediction
from imaging.samples import all_samples
from imaging.specs import IMAGE, MAX_BATCH_SIZE, OUTPUT_NAMES
from serving.client import ClientError, Endpoint, Unreachable, as_text, infer


def _as_bytes(image: bytes | bytearray | Path | str) -> bytes:
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    return Path(image).read_bytes()


def infer_batch(
    endpoint: Endpoint,
    model: str,
    images: Sequence[bytes],
    client: object | None = None,
    retry_s: float = 0.0,
) -> list[list[Prediction]]:
    """One request with ``len(images)`` (<= max batch) images; raises a ``ClientError``."""
    batch = np.array([[data] for data in images], dtype=np.object_)
    result = infer(endpoint, model, {IMAGE: batch}, OUTPUT_NAMES, client=client, retry_s=retry_s)
    ids, labels, scores = (result[name] for name in OUTPUT_NAMES)
    return [
        [
            Prediction(int(i), as_text(label), float(s))
            for i, label, s in zip(row_ids, row_labels, row_scores, strict=True)
        ]
        for row_ids, row_labels, row_scores in zip(ids, labels, scores, strict=True)
    ]


def classify(
    endpoint: Endpoint,
    model: str,
    images: Iterable[bytes | bytearray | Path | str],
    batch_size: int = MAX_BATCH_SIZE,
    retry_s: float = 0.0,
) -> list[list[Prediction]]:
    """Top-5 for every image (bytes or a file path), in order; batches of ``batch_size``;
    ``retry_s`` rides through a server restart (``serving.client.infer``).

    One bad image fails its whole batch (the server answers per request): use
    :func:`classify_each` to get per-image errors.
    """
    data = [_as_bytes(image) for image in images]
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch_size must be in 1..{MAX_BATCH_SIZE}")
    client = endpoint.client()
    try:
        results: list[list[Prediction]] = []
        for start in range(0, len(data), batch_size):
            results.extend(infer_batch(endpoint, model, data[start : start + batch_size], client, retry_s))
        return results
    finally:
        client.close()


def classify_each(
    endpoint: Endpoint, model: str, images: Sequence[bytes | bytearray | Path | str], retry_s: float = 0.0
) -> list[list[Prediction] | ClientError]:
    """Like :func:`classify`, but a failed batch is retried image by image to isolate the culprit."""
    data = [_as_bytes(image) for image in images]
    results: list[list[Prediction] | ClientError] = []
    client = endpoint.client()
    try:
        for start in range(0, len(data), MAX_BATCH_SIZE):
            chunk = data[start : start + MAX_BATCH_SIZE]
            try:
                results.extend(infer_batch(endpoint, model, chunk, client, retry_s))
            except Unreachable:
                raise
            except ClientError:
                for item in chunk:
                    try:
                        results.extend(infer_batch(endpoint, model, [item], client, retry_s))
                    except Unreachable:
                        raise
                    except ClientError as exc:
                        results.append(exc)
        return results
    finally:
        client.close()


app = typer.Typer(add_completion=False, help=__doc__, rich_markup_mode=None)


@app.command()
def main(
    files: Annotated[list[Path] | None, typer.Argument(help="JPEG/PNG/GIF/BMP/WebP/TIFF files")] = None,
    model: Annotated[str, typer.Option(help=f"ensemble: {', '.join(NETWORKS)}")] = "efficientnet_lite0",
    url: Annotated[str | None, typer.Option(help="server (default localhost:8000, gRPC :8001)")] = None,
    grpc: Annotated[bool, typer.Option("--grpc", help="use gRPC instead of HTTP")] = False,
    api_key: Annotated[str | None, typer.Option(envvar="TRITON_API_KEY", help="API key header")] = None,
    bearer_token: Annotated[str | None, typer.Option(envvar="TRITON_BEARER_TOKEN", help="Bearer")] = None,
    ssl: Annotated[bool, typer.Option("--ssl", help="TLS (implied by an https:// URL)")] = False,
    samples: Annotated[bool, typer.Option("--samples", help="also classify the bundled photos")] = False,
    retry_s: Annotated[float, typer.Option(help="keep retrying while the server restarts, seconds")] = 30.0,
) -> None:
    """Print the top-5 classes of each image."""
    paths = list(files or [])
    if samples:
        paths.extend(all_samples().values())
    if not paths:
        raise typer.BadParameter("give image files or --samples")
    if model not in NETWORKS:
        raise typer.BadParameter(f"--model must be one of {', '.join(NETWORKS)}")
    endpoint = Endpoint.from_options(url, grpc, api_key, bearer_token, ssl)
    protocol = endpoint.protocol
    console = Console()
    if not NETWORKS[model].pretrained_offline:
        console.print(
            f"[yellow]note: {model} serves random weights unless it was exported with --weights; "
            "check the server log[/yellow]"
        )
    readable, failed = [], 0
    for path in paths:
        try:
            readable.append((path, path.read_bytes()))
        except OSError as exc:
            console.print(f"[red]{path}: {exc.strerror or exc}[/red]")
            failed += 1
    try:
        results = classify_each(endpoint, model, [data for _, data in readable], retry_s)
    except Unreachable as exc:
        console.print(f"[red]cannot reach the server ({protocol}): {exc}[/red]")
        raise typer.Exit(2) from None
    for (path, _), result in zip(readable, results, strict=True):
        if isinstance(result, ClientError):
            console.print(f"[red]{path.name}: {result}[/red]")
            failed += 1
            continue
        table = Table(title=f"{path.name} - {model}", title_justify="left")
        table.add_column("#", justify="right")
        table.add_column("class id", justify="right")
        table.add_column("label")
        table.add_column("probability", justify="right")
        for rank, prediction in enumerate(result, 1):
            table.add_row(str(rank), str(prediction.class_id), prediction.label, f"{prediction.score:.4f}")
        console.print(table)
    if failed:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
