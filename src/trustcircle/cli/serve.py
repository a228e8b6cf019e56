"""``serve``: the instance's HTTP server (FastAPI on uvicorn)."""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import HomeOpt, home_path


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    home: HomeOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 8443,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Serve the JSON API (and pages) of an instance home; OpenAPI at /docs."""
    import uvicorn

    from ..web import create_app

    app = create_app(home_path(home))
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
