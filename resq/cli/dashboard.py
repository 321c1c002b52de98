"""``resq dashboard``: the web dashboard (the ``web`` extra), served by uvicorn.

The command imports :mod:`resq.web` (Starlette, Jinja2) only when it runs, so ``resq`` works without the
extra; a missing extra is a one-line error naming the install command.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import click

from resq.cli.common import BadInput, app_from, guard, logging_options, ops_options
from resq.log import configure, get_logger

__all__ = ["dashboard", "is_loopback"]

log = get_logger("resq.dashboard")

MISSING_EXTRA = "resq dashboard needs the web extra: pip install 'resq[web]'"

DASHBOARD_EPILOG = """\b
Examples:
  resq dashboard -A myapp.tasks                       # http://127.0.0.1:8080/, no credentials
  resq dashboard -A myapp.tasks --host 0.0.0.0 --auth admin:$PASSWORD
  RESQ_DASHBOARD_TOKEN=$TOKEN resq dashboard --host 0.0.0.0 --read-only
"""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``127.0.0.1``, ``::1``, ``localhost``): nobody else can
    connect to a dashboard bound there."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _web() -> Any:
    try:
        import uvicorn

        import resq.web
    except ImportError as exc:
        raise BadInput(MISSING_EXTRA) from exc
    return uvicorn, resq.web


@click.command(epilog=DASHBOARD_EPILOG, short_help="Serve the web dashboard (needs the web extra).")
@ops_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option(
    "--auth",
    "basic",
    metavar="USER:PASS",
    envvar="RESQ_DASHBOARD_AUTH",
    help="HTTP Basic auth; env RESQ_DASHBOARD_AUTH.",
)
@click.option(
    "--token", metavar="TOKEN", envvar="RESQ_DASHBOARD_TOKEN", help="A bearer token; env RESQ_DASHBOARD_TOKEN."
)
@click.option("--read-only", is_flag=True, help="Show everything, allow no action.")
@click.option("--root-path", default="", help="The path prefix a reverse proxy serves the dashboard under (/resq).")
@logging_options
def dashboard(
    app_ref: str | None,
    url: str | None,
    namespace: str | None,
    host: str,
    port: int,
    basic: str | None,
    token: str | None,
    read_only: bool,
    root_path: str,
    log_format: str,
    log_level: str,
) -> None:
    """Serve the web dashboard: queues, jobs, workers, scheduled, cron and dead jobs, with actions.

    Listening on anything but a loopback address needs --auth or --token.
    """
    if basic and token:
        raise BadInput("give either --auth USER:PASS or --token TOKEN, not both")
    if not (basic or token) and not is_loopback(host):
        raise BadInput(
            f"refusing to serve the dashboard on {host} without credentials: add --auth USER:PASS or --token TOKEN"
        )
    uvicorn, web = _web()
    app = app_from(app_ref, url, namespace)
    asgi = guard(lambda: web.create_app(app, auth=basic or None, token=token or None, read_only=read_only))
    configure(log_format, log_level)
    shown_host = f"[{host}]" if ":" in host else host
    log.info(
        "dashboard_started",
        url=f"http://{shown_host}:{port}{root_path.rstrip('/')}/",
        auth="basic" if basic else "token" if token else "none",
        read_only=read_only,
        namespace=app.broker.keys.namespace,
    )
    uvicorn.run(asgi, host=host, port=port, log_level="warning", root_path=root_path.rstrip("/"))
