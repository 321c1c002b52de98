"""Redaction: the values of arguments a task (or the app) names in ``redact`` are hidden wherever resq
shows arguments (``resq job``, ``resq dead show``, the inspector); the job itself runs with them."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from resq import ConfigError, Resq
from resq.ops import Inspector
from resq.task import REDACTED
from tests.conftest import RunWorker
from tests.helpers import read_log, wait_for


def test_resq_job_hides_a_redacted_argument_given_by_position_or_name(core: ModuleType, cli: Any) -> None:
    by_position = core.login.delay("ada", "s3cret", token="t0k")
    by_name = core.login.apply_async(("bob",), {"password": "hunter2"})
    shown = cli("job", by_position.id, "-A", "tests.apps.core:app").output
    assert "ada" in shown and "t0k" in shown and REDACTED in shown and "s3cret" not in shown
    shown = cli("job", by_name.id, "-A", "tests.apps.core:app", "--json").output
    assert "bob" in shown and "hunter2" not in shown
    assert by_position.info()["args"] == ["ada", "s3cret"]  # the job keeps them: it runs with them


def test_an_app_wide_list_hides_keyword_arguments_of_any_task(core: ModuleType, redis_url: str) -> None:
    job = core.login.delay("ada", "s3cret", token="t0k")
    elsewhere = Resq(redis_url, redact=("token",))  # knows no task: the app's list, on keywords
    info = Inspector(elsewhere).job_info(job.id)
    assert info["kwargs"] == {"token": REDACTED} and info["args"] == ["ada", "s3cret"]
    registered = Inspector(core.app).job_info(job.id)
    assert registered["args"] == ["ada", REDACTED] and registered["kwargs"] == {"token": "t0k"}


@pytest.mark.parametrize("bad", ["password", [1], [""]])
def test_redact_must_be_a_list_of_names(bad: Any) -> None:
    with pytest.raises(ConfigError, match="must be a list of argument names"):
        Resq("redis://127.0.0.1:1/0").task(name="t", redact=bad)(lambda password: None)
    with pytest.raises(ConfigError, match="must be a list of argument names"):
        Resq("redis://127.0.0.1:1/0", redact=bad)


def test_a_failing_jobs_redacted_argument_is_in_no_log_line_or_traceback(
    core: ModuleType, run_worker: RunWorker
) -> None:
    worker = run_worker("tests.apps.core:app", "--log-format", "console", "--log-level", "DEBUG")
    job = core.login_fails.delay("ada", password="s3cret-Pa55")
    wait_for(lambda: job.status() == "dead", message="job dead")
    wait_for(lambda: "PermissionError" in read_log(worker), message="the failure logged with its traceback")
    assert "s3cret-Pa55" not in read_log(worker)  # rich tracebacks showed each frame's locals
