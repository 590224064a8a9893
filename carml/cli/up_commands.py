"""Serving commands: the web app alone (`carml web`), or everything on one machine (`carml up`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import click

from carml.settings import Settings, load_settings


def _serve(host: str, port: int) -> None:
    from webapp import create_app

    # NB: Flask's threaded server is enough for one machine; deployments run gunicorn (docker-compose.yml).
    create_app(load_settings()).run(host=host, port=port, threaded=True, use_reloader=False)


@click.command("web")
@click.option("--host", help="Address to listen on (default CARML_WEB_HOST, 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default CARML_WEB_PORT, 8080).")
def web_command(host: str | None, port: int | None) -> None:
    """Serve the web app and REST API."""
    settings = load_settings()
    from carml.db.migrate import require_current

    require_current(settings.database)
    _serve(host or settings.web_host, port or settings.web_port)


def _show_first_admin(settings: Settings) -> None:
    """On the first start (no user yet), create `admin` and print its password and API token, this once only."""
    from carml.accounts import ensure_first_admin

    admin = ensure_first_admin(settings)
    if admin is None:
        return
    password = admin.password if admin.password is not None else "(the one in CARML_ADMIN_PASSWORD)"
    click.echo(
        f"Created the user {admin.name!r} (role admin) — shown this once only, keep them:\n"
        f"  password:  {password}\n"
        f"  API token: {admin.token}\n"
        f"More users: `carml users create NAME`; more tokens: `carml tokens create --user NAME`.",
        err=True,
    )


@click.command("up")
@click.option("--hardware", default="auto", show_default=True, help="Hardware tag of the worker started.")
@click.option("--concurrency", "-c", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--host", help="Address to listen on (default CARML_WEB_HOST, 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default CARML_WEB_PORT, 8080).")
def up_command(hardware: str, concurrency: int, host: str | None, port: int | None) -> None:
    """Migrate the database, start a worker and serve the web app: the whole service on this machine."""
    from carml.db.migrate import upgrade

    settings = load_settings()
    upgrade(settings.database)
    _show_first_admin(settings)
    worker = subprocess.Popen(
        [sys.executable, "-m", "carml", "worker", "--hardware", hardware, "--concurrency", str(concurrency)],
        env=os.environ.copy(),
    )
    host, port = host or settings.web_host, port or settings.web_port
    where = "embedded default (SQLite, local queue and object store under " + str(settings.home) + ")"
    click.echo(
        f"CarML on http://{host}:{port} — {where if settings.embedded else 'configured backends'}\n"
        f"Submit a first evaluation from another terminal:\n"
        f"  .venv/bin/carml evaluate digits-cnn --framework onnxruntime --dataset digits-png",
        err=True,
    )
    # A service manager stops us with SIGTERM, and a shell may start us with SIGINT ignored: both must end
    # in the `finally` below, or the worker would outlive us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _serve(host, port)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()


COMMANDS = [web_command, up_command]
