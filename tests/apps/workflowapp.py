"""Tasks for ``tests/integration/test_chains.py`` (``resq worker -A tests.apps.workflowapp:app``). Each
counts its runs in Redis, under ``wftest:*``, from its own process."""

from __future__ import annotations

import os

from resq import Resq
from tests.topology import RedisClient, client_for

app = Resq()


def _redis() -> RedisClient:
    return client_for(os.environ["RESQ_REDIS_URL"])


@app.task(name="wf.fetch")
def fetch(url: str) -> str:
    _redis().incr("wftest:fetch")
    return f"<html>{url}</html>"


@app.task(name="wf.parse", retries=2, backoff=0)
def parse(page: str, fail_first: bool = False) -> dict[str, object]:
    runs = _redis().incr("wftest:parse")
    if fail_first and runs == 1:
        raise ConnectionError("the parser's service hiccuped")
    return {"title": page.removeprefix("<html>").removesuffix("</html>"), "length": len(page)}


@app.task(name="wf.store", queue="db")
def store(doc: dict[str, object], table: str = "pages") -> str:
    _redis().incr("wftest:store")
    return f"{table}:{doc['title']}"


@app.task(name="wf.ping")
def ping(word: str = "pong") -> str:
    return word


@app.task(name="wf.broken")
def broken(value: object) -> None:
    raise ValueError(f"cannot take {value!r}")


@app.task(name="wf.resize")
def resize(image: str, width: int) -> str:
    if width < 0:
        raise ValueError(f"no width {width}")
    return f"{image}@{width}"


@app.task(name="wf.collect")
def collect(results: list[object], label: str = "all") -> str:
    """A chord's callback: records each call (the scenario counts them) and joins the results."""
    _redis().rpush("wftest:collect", label)
    return f"{label}:" + ",".join(str(r) for r in results)


@app.task(name="wf.square")
def square(n: int, pause: float = 0.0) -> int:
    if pause:
        import time

        time.sleep(pause)
    _redis().incr("wftest:square")
    return n * n


@app.task(name="wf.report")
def report(status: dict[str, object], role: str) -> str:
    """A batch's callback: keeps the counts it received under ``wftest:report:<role>``."""
    import json

    _redis().rpush(f"wftest:report:{role}", json.dumps(status, sort_keys=True))
    return role


@app.task(name="wf.spawn")
def spawn(n: int) -> int:
    """A job of a batch that enqueues ``n`` more (nested work: they join the batch)."""
    for i in range(n):
        square.delay(i)
    return n


@app.task(name="wf.mark")
def mark(tag: str) -> str:
    _redis().rpush("wftest:marks", tag)
    return tag
