"""Django integration (the ``django`` extra): add ``"resq.contrib.django"`` to ``INSTALLED_APPS``.

- settings: ``RESQ = {"url": ..., "namespace": ..., <any other Resq setting>}`` (default: ``RESQ_REDIS_URL``
  and ``RESQ_NAMESPACE``), or ``RESQ = {"app": "mysite.jobs:app"}`` to use an app of your own;
- :data:`app`: the project's :class:`~resq.Resq`, built from those settings on first use;
- :func:`task`: ``@task`` / ``@task(retries=3)`` registers on that app (``from resq.contrib.django import
  task`` in ``<app>/tasks.py``, which is imported for every installed app when Django starts);
- ``task.delay_on_commit(...)``: enqueued once the surrounding transaction commits, never if it rolls back;
- ``manage.py resq worker|scheduler|stats|…``: resq's command line with Django set up and ``-A`` this app;
- in a worker, stale database connections are closed before and after each job, as Django's request
  cycle does (``django.db.close_old_connections``).

See ``docs/django.md``.
"""

from __future__ import annotations

from typing import Any

from resq.contrib.django.integration import APP_REF, get_app, reset, setup_django, task

__all__ = ["APP_REF", "app", "get_app", "reset", "task"]


def __getattr__(name: str) -> Any:
    """``app``: the project's app, created on first use (Django is set up first if it is not yet, for
    ``resq worker -A resq.contrib.django:app`` run with ``DJANGO_SETTINGS_MODULE``)."""
    if name == "app":
        setup_django()
        return get_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
