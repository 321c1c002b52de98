"""FastAPI and Starlette: enqueue from ``async def`` endpoints without blocking the loop, close resq's
connections with the application, and mount the dashboard under a path.

``await task.adelay(...)`` (and ``aapply_async``) store the job through ``redis.asyncio`` on the running
loop, so a request handler never waits on a blocking call while Redis answers. This module adds the
application's side::

    from typing import Annotated
    from fastapi import Depends, FastAPI
    from resq.contrib.fastapi import dependency, lifespan, mount_dashboard

    api = FastAPI(lifespan=lifespan(app))          # closes the loop's Redis client at shutdown
    mount_dashboard(api, app, "/resq", auth=("admin", "s3cret"))   # the web extra

    @api.post("/orders/{order_id}")
    async def order(order_id: int, resq: Annotated[Resq, Depends(dependency(app))]) -> dict[str, str]:
        job = await send_receipt.adelay(order_id)
        return {"job": job.id}

Nothing here imports FastAPI: it works with any ASGI application that takes a ``lifespan`` and ``mount``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from resq.app import Resq

__all__ = ["dependency", "lifespan", "mount_dashboard"]


def lifespan(app: Resq) -> Callable[[Any], contextlib.AbstractAsyncContextManager[None]]:
    """A ``lifespan`` for ``FastAPI(lifespan=...)`` / ``Starlette(lifespan=...)``: at shutdown it closes
    the ``redis.asyncio`` client ``app`` made on the application's loop."""

    @contextlib.asynccontextmanager
    async def run(_: Any) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await app.broker.aclose()

    return run


def dependency(app: Resq) -> Callable[[], Resq]:
    """A FastAPI dependency (``Depends(dependency(app))``) that hands the endpoint the resq app."""

    def provide() -> Resq:
        return app

    return provide


def mount_dashboard(api: Any, app: Resq, path: str = "/resq", **options: Any) -> None:
    """Mount resq's dashboard in the ASGI application ``api`` under ``path`` (``options`` as for
    :func:`resq.web.create_app`: ``auth``, ``token``, ``read_only``). Needs the ``web`` extra."""
    from resq.web import create_app

    api.mount(path, create_app(app, **options))
