"""The app of ``throughput.py`` (``-A bench.throughput_app:app`` from the repository root).

Redis comes from ``RESQ_REDIS_URL`` (the benchmark's private server). ``noop`` is both a resq task
(``bench.noop``) and, through ``noop_plain``, a plain function RQ can import by its dotted path.
"""

from __future__ import annotations

from resq import Resq

app = Resq()


def noop_plain(i: int) -> int:
    """Do nothing; return ``i``."""
    return i


noop = app.task(name="bench.noop")(noop_plain)
