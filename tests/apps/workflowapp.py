"""Tasks for ``tests/integration/test_chains.py`` (``resq worker -A tests.apps.workflowapp:app``). Each
counts its runs in Redis, under ``wftest:*``, from its own process."""

from __future__ import annotations

import os

import redis

from resq import Resq

app = Resq()


def _redis() -> redis.Redis:
    return redis.Redis.from_url(os.environ["RESQ_REDIS_URL"])


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
