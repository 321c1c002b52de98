"""The producer of every Python system: ``python producer.py SYSTEM MODE N [LEAD [FIRST]]``; one JSON line out.

``SYSTEM`` names the module ``<SYSTEM>_app`` (its ``enqueue(i)`` and ``enqueue_at(i, due)``). Modes:

- ``fill``: N jobs (numbered from FIRST, default 0), one call each, timed: ``{"elapsed": s, "n": N}``;
- ``latency``: N jobs one at a time, each once the previous one is done and 5 ms have passed (the worker
  is idle and warm), stopping early after LEAD seconds: ``{"sent": {i: time before the call}}``;
- ``delayed``: N jobs, all due LEAD seconds from now: ``{"due": t, "late_enqueue": bool}``.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import time
from types import ModuleType
from typing import Any

from body import started

GAP_S = 0.005


async def fill(app: ModuleType, n: int, first: int = 0) -> dict[str, Any]:
    """Enqueue ``n`` jobs, one call each; how long it took."""
    t0 = time.perf_counter()
    for i in range(first, first + n):
        await app.enqueue(i)
    return {"elapsed": time.perf_counter() - t0, "n": n}


async def latency(app: ModuleType, n: int, budget_s: float) -> dict[str, Any]:
    """Enqueue ``n`` jobs one at a time to an idle worker (for ``budget_s`` at most); when each call began."""
    sent: dict[int, float] = {}
    deadline = time.monotonic() + budget_s
    for i in range(n):
        if time.monotonic() > deadline:
            break
        sent[i] = time.time()
        await app.enqueue(i)
        while not started(i):
            time.sleep(0.0005)
        time.sleep(GAP_S)
    return {"sent": sent}


async def delayed(app: ModuleType, n: int, lead: float) -> dict[str, Any]:
    """Enqueue ``n`` jobs all due ``lead`` seconds from now."""
    due = time.time() + lead
    for i in range(n):
        await app.enqueue_at(i, due)
    return {"due": due, "late_enqueue": time.time() > due}


async def main(system: str, mode: str, n: int, lead: float, first: int) -> dict[str, Any]:
    """Run one mode of one system's producer."""
    app = importlib.import_module(f"{system}_app")
    if mode == "fill":
        return await fill(app, n, first)
    if mode == "latency":
        return await latency(app, n, lead)
    return await delayed(app, n, lead)


if __name__ == "__main__":
    args = sys.argv[1:]
    lead, first = float(args[3]) if len(args) > 3 else 1.0, int(args[4]) if len(args) > 4 else 0
    result = asyncio.run(main(args[0], args[1], int(args[2]), lead, first))
    print(json.dumps(result), flush=True)
