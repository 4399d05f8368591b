"""The ``rostra`` command."""

from __future__ import annotations

import gc
import sys

import typer

from rostra.cli import keys, users, worker
from rostra.cli.common import database_failure, fail, load_settings, load_settings_for_command
from rostra.core.config import SecretKeyUnavailable

app = typer.Typer(
    name="rostra",
    help="Rostra: a self-hosted API platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(users.app, name="users")
app.add_typer(keys.app, name="keys")
app.command()(worker.worker)


def _migrate(database_url: str) -> None:
    from rostra.migrations.runner import upgrade

    try:
        upgrade(database_url)
    except Exception as exc:
        fail(database_failure(exc) or f"migration failed: {exc}")


@app.command()
def migrate() -> None:
    """Apply pending database migrations."""
    settings = load_settings_for_command()
    _migrate(settings.database_url)
    typer.echo("database is up to date", err=True)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
) -> None:
    """Serve the API (applies pending migrations first on the embedded SQLite database)."""
    import uvicorn

    from rostra.app import create_app

    settings = load_settings()
    if settings.is_sqlite:
        _migrate(settings.database_url)
    try:
        application = create_app(settings)
    except SecretKeyUnavailable as exc:
        fail(str(exc), 2)
    config = uvicorn.Config(
        application,
        host=host,
        port=port,
        access_log=False,
        log_config=None,
        proxy_headers=False,  # X-Forwarded-For is believed only from ROSTRA_TRUSTED_PROXIES
        server_header=False,
    )
    try:
        # Everything built so far lives as long as the process: move it out of the collector's
        # reach, or each full collection walks it all and stalls every request for a while.
        gc.collect()
        gc.freeze()
        uvicorn.Server(config).run()
    except OSError as exc:
        fail(f"cannot serve on {host}:{port}: {exc}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
