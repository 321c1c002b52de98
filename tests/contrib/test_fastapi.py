"""FastAPI: an ``async def`` endpoint enqueues with ``await task.adelay()`` on ``redis.asyncio`` (the loop
serves others while Redis answers), the lifespan closes the loop's client, and the dashboard is mounted
under a path. With FastAPI's own app and Starlette's test client, and a real Redis.

No ``from __future__ import annotations`` here: FastAPI reads the endpoint's annotations at definition,
and a dependency built from a local (``Depends(dependency(app))``) must be a value, not a string."""

import asyncio
import base64

from starlette.testclient import TestClient

from resq import Resq
from resq.worker.consumer import Consumer
from tests.apps import fastapiapp
from tests.conftest import REPO_ROOT
from tests.redis_server import RedisServer


def test_the_docs_application_enqueues_and_a_worker_runs_the_job(redis_url: str) -> None:
    fastapiapp.app.reconfigure(url=redis_url)
    app = fastapiapp.app
    app.broker.queues.ensure_groups(["default"])
    with TestClient(fastapiapp.api) as client:
        reply = client.post("/orders/1047").json()
        assert app.job(reply["job"]).status() == "queued"
        assert Consumer(app, "w1", ["default"]).step(None).kinds == {"succeeded": 1}
        assert app.job(reply["job"]).result(timeout=1) == "receipt 1047"
        credentials = base64.b64encode(b"admin:s3cret").decode()
        page = client.get("/resq/", headers={"Authorization": f"Basic {credentials}"})
        assert page.status_code == 200 and "default" in page.text  # the dashboard, under its path
        assert client.get("/resq/").status_code == 401
    app.broker.close()


def test_the_docs_show_the_application_the_tests_run() -> None:
    module = (REPO_ROOT / "tests/apps/fastapiapp.py").read_text()
    code = module[module.index("from typing import Annotated") :]
    assert code in (REPO_ROOT / "docs/fastapi.md").read_text()


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
