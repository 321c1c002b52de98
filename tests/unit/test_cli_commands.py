"""Every command family joins the ``resq`` group, whatever was imported before: ``resq.cli.group`` adds
its own explicitly, the scheduler's come from the ``resq.commands`` entry points."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from resq.cli import main
from tests.conftest import REPO_ROOT

COMMANDS = [
    "worker",
    "stats",
    "queues",
    "workers",
    "job",
    "batch",
    "enqueue",
    "tasks",
    "events",
    "dead",
    "queue",
    "scheduler",
    "scheduled",
    "cron",
    "acl",
    "dashboard",
    "outbox",
]
SUBCOMMANDS = {
    "workers": ["pause", "resume", "stop"],
    "job": ["cancel"],
    "dead": ["list", "show", "retry", "purge"],
    "queue": ["clear", "pause", "resume"],
    "outbox": ["relay"],
}

#: In a fresh interpreter that imports nothing but ``resq.cli``: the command names of ``resq --help``.
FRESH = """\
from click.testing import CliRunner
from resq.cli import main
result = CliRunner().invoke(main, ["--help"])
assert result.exit_code == 0, result.output
print(result.output)
"""


def _listed(help_text: str) -> list[str]:
    section = help_text.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in section.splitlines() if line.startswith("  ") and line.strip()]


def test_help_lists_every_command_family() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    assert sorted(_listed(result.output)) == sorted(COMMANDS)
    for group, names in SUBCOMMANDS.items():
        sub = CliRunner().invoke(main, [group, "--help"])
        assert sub.exit_code == 0, sub.output
        assert sorted(_listed(sub.output)) == sorted(names)


def test_help_lists_every_command_family_in_a_fresh_interpreter() -> None:
    done = subprocess.run([sys.executable, "-c", FRESH], capture_output=True, text=True, timeout=60, cwd=str(REPO_ROOT))
    assert done.returncode == 0, done.stderr
    assert sorted(_listed(done.stdout)) == sorted(COMMANDS)
