"""The app of ``resque.py`` (``-A bench.resque_app:app`` from the repository root): a no-op task for the
Resque family's class ``Noop``, and the same no-op as a plain resq task. Redis comes from ``RESQ_REDIS_URL``."""

from __future__ import annotations

from resq import Resq

app = Resq()


@app.task(name="bench.resque_noop", resque_class="Noop")
def noop(i: int) -> int:
    """Do nothing; return ``i``."""
    return i
