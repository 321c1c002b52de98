"""``manage.py resq <command> ...``: resq's command line, with Django set up and ``-A`` the project's app.

``manage.py resq worker -q default -c 2``, ``manage.py resq stats``, ``manage.py resq scheduler``, … take
the options of ``resq <command>`` (``manage.py resq --help`` lists them).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from resq.contrib.django.integration import APP_REF, get_app

__all__ = ["Command"]

#: Options of ``manage.py`` itself, handled by Django before the command runs.
DJANGO_OPTIONS = ("--settings", "--pythonpath")


class Command(BaseCommand):  # type: ignore[misc]  # django ships no type hints
    help = "Run a resq command (worker, scheduler, stats, ...) on this project's app: manage.py resq --help."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("argv", nargs="*", help="the resq command and its options")

    def run_from_argv(self, argv: list[str]) -> None:
        """Hand everything after ``manage.py resq`` to resq's command line (click parses it)."""
        prog = f"{Path(argv[0]).name} {argv[1]}"
        run(strip_django_options(argv[2:]), prog, standalone=True)

    def handle(self, *args: Any, **options: Any) -> None:
        """``call_command("resq", "stats")``: a failing command raises ``CommandError``."""
        run(list(options.get("argv") or args), "manage.py resq", standalone=False)


def strip_django_options(argv: list[str]) -> list[str]:
    """``argv`` without ``--settings X`` / ``--pythonpath=X`` (``manage.py`` applied them already)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in DJANGO_OPTIONS:
            skip = True
        elif not arg.startswith(tuple(f"{o}=" for o in DJANGO_OPTIONS)):
            kept.append(arg)
    return kept


def run(argv: list[str], prog: str, *, standalone: bool) -> None:
    """Run ``resq *argv`` with ``RESQ_APP`` the project's app (an explicit ``-A`` still wins)."""
    from resq.cli import main

    get_app()  # the settings are checked (and the tasks discovered) before the command starts
    previous = os.environ.get("RESQ_APP")
    os.environ["RESQ_APP"] = APP_REF
    try:
        main.main(args=argv, prog_name=prog)  # click exits with resq's status
    except SystemExit as exc:
        if standalone:
            raise
        if exc.code not in (0, None):
            raise CommandError(f"resq {' '.join(argv)} exited with status {exc.code}") from None
    finally:
        if not standalone:  # call_command: leave the caller's environment as it was
            if previous is None:
                os.environ.pop("RESQ_APP", None)
            else:
                os.environ["RESQ_APP"] = previous
