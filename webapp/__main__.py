"""``python -m webapp``: serve the example page on localhost, in front of a Triton server.

Options override the ``WEBAPP_*`` environment variables, which override the defaults.
"""

from __future__ import annotations

import os
import threading
import webbrowser
from typing import Annotated

import typer
import uvicorn

from webapp.app import create_app
from webapp.settings import WebAppSettings

cli = typer.Typer(add_completion=False, help=__doc__)


@cli.command()
def main(
    triton_url: Annotated[str | None, typer.Option(help="Triton address (env WEBAPP_TRITON_URL)")] = None,
    protocol: Annotated[str | None, typer.Option(help="http or grpc (env WEBAPP_PROTOCOL)")] = None,
    api_key: Annotated[
        str | None, typer.Option(help="API key sent to Triton as `api-key` (env WEBAPP_API_KEY)")
    ] = None,
    host: Annotated[str | None, typer.Option(help="address to listen on (env WEBAPP_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on (env WEBAPP_PORT)")] = None,
    max_upload_mb: Annotated[
        float | None, typer.Option(help="largest image accepted, MB (env WEBAPP_MAX_UPLOAD_BYTES)")
    ] = None,
    open_browser: Annotated[bool, typer.Option("--open", help="open the page in a browser")] = False,
) -> None:
    """Serve the page until Ctrl-C."""
    overrides: dict[str, object] = {
        k: v
        for k, v in {
            "triton_url": triton_url,
            "protocol": protocol,
            "api_key": api_key,
            "host": host,
            "port": port,
            "max_upload_bytes": int(max_upload_mb * 1024 * 1024) if max_upload_mb else None,
        }.items()
        if v is not None
    }
    settings = WebAppSettings(**overrides)  # type: ignore[arg-type]
    url = f"http://{settings.host}:{settings.port}/"
    typer.echo(f"Web app on {url}  (Triton at {settings.triton_url}, {settings.protocol})")
    if open_browser and os.environ.get("DISPLAY", os.environ.get("WAYLAND_DISPLAY")):
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


if __name__ == "__main__":
    cli()
