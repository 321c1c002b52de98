"""The web dashboard (``resq dashboard``, the ``web`` extra: ``pip install 'resq[web]'``).

Mount it in an ASGI application of your own::

    from resq.web import create_app

    api.mount("/resq", create_app(app, auth=("admin", os.environ["RESQ_DASHBOARD_PASSWORD"])))

See docs/dashboard.md.
"""

from __future__ import annotations

from typing import Any

from resq.app import Resq
from resq.ops import Inspector
from resq.web.app import Dashboard
from resq.web.auth import Guard, parse_auth

__all__ = ["create_app"]


def create_app(
    app: Resq,
    auth: str | tuple[str, str] | None = None,
    *,
    token: str | None = None,
    read_only: bool = False,
    secret: bytes | None = None,
) -> Any:
    """The dashboard of ``app`` as an ASGI application.

    Args:
        app: the resq app whose Redis the dashboard reads (its url, namespace, tasks, redaction, keys).
        auth: ``(user, password)`` or ``"USER:PASS"``: every request needs HTTP Basic auth.
        token: every request needs ``Authorization: Bearer TOKEN`` (or ``?token=TOKEN``, which sets a
            cookie for the pages after it). With both, either is accepted; with neither, no credentials
            are asked (keep it on a loopback address or behind your own authentication).
        read_only: show everything, allow no action (403), show no buttons.
        secret: the key of the CSRF tokens; random per process by default: give the same bytes to every
            process that serves one dashboard (several ASGI workers behind one address).

    Raises:
        ConfigError: a malformed ``auth`` or an empty ``token``.
    """
    guard = Guard(parse_auth(auth), token) if secret is None else Guard(parse_auth(auth), token, secret)
    return Dashboard(Inspector(app), guard, read_only).asgi()
