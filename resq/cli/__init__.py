"""The ``resq`` command line (``resq = "resq.cli:main"``, ``python -m resq``).

- :mod:`resq.cli.group`: the click group ``main``, which adds the command families below and the
  commands of the ``resq.commands`` entry points;
- :mod:`resq.cli.common`: what the commands share (``load_app``, options, errors, tables, times);
- :mod:`resq.cli.worker`: ``resq worker``;
- :mod:`resq.cli.ops`: ``stats``, ``queues``, ``workers``, ``job``, ``enqueue``, ``events``;
- :mod:`resq.cli.dead`: ``dead …`` and ``queue clear``.
"""

from resq.cli.group import load_app, main

__all__ = ["load_app", "main"]
