"""The installed package as a user's project sees it: type checkers find resq's types (PEP 561)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

USER_CODE = """
from typing import assert_type

from resq import Job, Resq, Task
from resq_scheduler import Scheduler

app = Resq("redis://127.0.0.1:1/0")


@app.task(retries=2)
def add(x: int, y: int) -> int:
    return x + y


@app.periodic(every=60)
def ping() -> bool:
    return True


def check(scheduler: Scheduler) -> None:
    assert_type(add.delay(1, 2), Job[int])
    task: Task[[], bool] = ping
    assert_type(task.delay(), Job[bool])
"""


def test_mypy_sees_the_installed_package_from_a_project_outside_the_repository(tmp_path: Path) -> None:
    """A project elsewhere (here ``tmp_path``) type-checks against resq as installed in this environment:
    under ``pip install -e .`` that needs a plain path in a ``.pth`` file, not setuptools' import hook,
    which static tools cannot follow (``Cannot find implementation or library stub for module named "resq"``).
    """
    (tmp_path / "user_app.py").write_text(textwrap.dedent(USER_CODE))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "user_app.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found in 1 source file" in done.stdout
