"""Running node-resque (``tests/interop/node/resque.js``, from npm: ``make test`` runs ``npm ci``) against a
test's own Redis."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.redis_server import RedisServer

NODE = Path(__file__).resolve().parent / "node"


def node(server: RedisServer, mode: str, *args: str, namespace: str = "resque", timeout: float = 30) -> str:
    """Run ``resque.js <mode>`` on ``server``; returns what it printed (it must exit 0)."""
    if shutil.which("node") is None or not (NODE / "node_modules" / "node-resque").is_dir():
        pytest.fail("node-resque is not installed: run `make test` (it runs `npm ci` in tests/interop/node)")
    proc = subprocess.run(
        ["node", "resque.js", mode, str(server.port), namespace, *args],
        cwd=NODE,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, f"node resque.js {mode} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def node_work(
    server: RedisServer, queues: str, classes: str, expect: int, namespace: str = "resque", timeout: int = 20
) -> None:
    """Run node-resque's worker (its jobs: ``classes``) and scheduler until ``expect`` jobs ran."""
    node(server, "work", queues, str(expect), str(timeout), classes, namespace=namespace, timeout=timeout + 10)


def node_enqueue(server: RedisServer, jobs: list[dict[str, Any]], namespace: str = "resque") -> None:
    """Enqueue through node-resque's ``Queue`` (``{queue, class, args[, in_ms]}``), or push a payload as
    another producer wrote it (``{queue, raw}``)."""
    node(server, "enqueue", json.dumps(jobs), namespace=namespace)


def node_json(server: RedisServer, mode: str, *args: str) -> Any:
    """What ``resq.js failed`` or ``workers`` printed, parsed."""
    return json.loads(node(server, mode, *args))


def ran(client: redis.Redis) -> list[dict[str, Any]]:
    """The runs recorded in ``interop:ran``, in order."""
    return [json.loads(raw) for raw in client.lrange("interop:ran", 0, -1)]
