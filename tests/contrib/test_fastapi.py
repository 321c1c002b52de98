"""FastAPI: an ``async def`` endpoint enqueues with ``await task.adelay()`` on ``redis.asyncio`` (the loop
serves others while Redis answers), the lifespan closes the loop's client, and the dashboard is mounted
under a path. With FastAPI's own app and Starlette's test client, and a real Redis.

No ``from __future__ import annotations`` here: FastAPI reads the endpoint's annotations at definition,
and a dependency built from a local (``Depends(dependency(app))``) must be a value, not a string."""

import asyncio
import base64
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from starlette.testclient import TestClient

from resq import Resq
from resq.contrib.fastapi import dependency, lifespan, mount_dashboard
from resq.worker.consumer import Consumer
from tests.redis_server import RedisServer


def _api(app: Resq) -> FastAPI:
    @app.task(name="receipt")
    def receipt(order_id: int) -> str:
        return f"receipt {order_id}"

    api = FastAPI(lifespan=lifespan(app))
    mount_dashboard(api, app, "/resq", auth=("admin", "s3cret"))

    @api.post("/orders/{order_id}")
    async def order(order_id: int, resq: Annotated[Resq, Depends(dependency(app))]) -> dict[str, Any]:
        job = await receipt.adelay(order_id)
        return {"job": job.id, "same_app": resq is app}

    return api


def test_an_async_endpoint_enqueues_and_a_worker_runs_the_job(redis_url: str) -> None:
    app = Resq(redis_url)
    app.broker.queues.ensure_groups(["default"])
    with TestClient(_api(app)) as client:
        reply = client.post("/orders/1047").json()
        assert app.job(reply["job"]).status() == "queued" and reply["same_app"] is True
        assert Consumer(app, "w1", ["default"]).step(None).kinds == {"succeeded": 1}
        assert app.job(reply["job"]).result(timeout=1) == "receipt 1047"
        credentials = base64.b64encode(b"admin:s3cret").decode()
        page = client.get("/resq/", headers={"Authorization": f"Basic {credentials}"})
        assert page.status_code == 200 and "default" in page.text  # the dashboard, under its path
        assert client.get("/resq/").status_code == 401
    app.broker.close()


def test_adelay_leaves_the_loop_free_while_redis_does_not_answer(private_redis: RedisServer) -> None:
    app = Resq(private_redis.url(0), broker_retry_s=5)

    @app.task(name="ping")
    def ping() -> None: ...

    async def scenario() -> tuple[int, str]:
        await ping.adelay()  # the loop's client is made and connected
        ticks = 0
        private_redis.pause()
        pending = asyncio.ensure_future(ping.adelay())
        for _ in range(40):  # 0.4 s of other work while Redis is frozen
            await asyncio.sleep(0.01)
            ticks += 1
        assert not pending.done()
        private_redis.resume()
        job = await pending
        status = job.status()
        await app.broker.aclose()
        return ticks, status

    ticks, status = asyncio.run(scenario())
    assert ticks == 40 and status == "queued"
    app.broker.close()
