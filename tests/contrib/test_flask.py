"""resq.contrib.flask: the extension configured from app.config, a route that enqueues (Flask's test
client), real workers (``resq worker`` and ``flask resq worker``) running the job inside the app
context, and ``flask resq`` through Flask's CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask, current_app

import resq
from resq.contrib.flask import Resq as FlaskResq
from resq.contrib.flask import settings_from
from tests.apps import flaskapp
from tests.helpers import burst

REPO_ROOT = Path(__file__).resolve().parents[2]
FLASK = Path(sys.executable).with_name("flask")


@pytest.fixture
def app(redis_url: str) -> Flask:
    return flaskapp.create_app(redis_url)


def test_the_extension_reads_app_config() -> None:
    flask_app = Flask("configured")
    flask_app.config.update(
        RESQ_REDIS_URL="redis://example.invalid:6390/3", RESQ_NAMESPACE="shop", RESQ_RESULT_TTL=60, RESQ_OTHER=1
    )
    ext = FlaskResq(flask_app)
    assert isinstance(ext.app, resq.Resq)
    assert flask_app.extensions["resq"] is ext
    assert (ext.app.settings.url, ext.app.settings.namespace) == ("redis://example.invalid:6390/3", "shop")
    assert ext.app.settings.result_ttl == 60
    assert settings_from({"RESQ_URL": "redis://a/0", "RESQ_REDIS_URL": "redis://b/0"})["url"] == "redis://a/0"

    @ext.task
    def noop() -> None: ...

    assert ext.app.tasks[noop.name] is noop


def test_a_bad_setting_in_the_config_is_a_config_error() -> None:
    flask_app = Flask("bad")
    flask_app.config["RESQ_RESULT_TTL"] = "soon"
    with pytest.raises(resq.ConfigError):
        FlaskResq(flask_app)


def test_eager_jobs_run_in_the_app_context() -> None:
    flask_app = Flask("eager")
    flask_app.config.update(RESQ_EAGER=True, ANSWER=42)
    ext = FlaskResq(flask_app)

    @ext.task
    def answer() -> int:
        return int(current_app.config["ANSWER"])

    assert answer.delay().result() == 42  # outside any context: the hook pushes the app's


def test_a_request_enqueues_and_a_resq_worker_runs_it_in_the_app_context(app: Flask, run_worker: object) -> None:
    response = app.test_client().post("/greet/Ada")
    assert response.status_code == 202
    job_id = response.get_json()["job"]
    assert flaskapp.jobs.app.job(job_id).status() == resq.JobStatus.QUEUED
    burst(run_worker, "tests.apps.flaskapp:resq_app")  # type: ignore[arg-type]
    assert flaskapp.jobs.app.job(job_id).result(timeout=5) == {"greeting": "Hello, Ada", "app": "flaskapp"}


def test_flask_resq_worker_runs_the_job_in_the_app_context(app: Flask, redis_url: str, tmp_path: Path) -> None:
    job_id = app.test_client().post("/greet/Grace").get_json()["job"]
    env = {**os.environ, "RESQ_REDIS_URL": redis_url, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("RESQ_APP", None)
    done = subprocess.run(
        [str(FLASK), "--app", "tests.apps.flaskapp", "resq", "worker", "--burst", "--no-banner"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert flaskapp.jobs.app.job(job_id).result(timeout=5) == {"greeting": "Hello, Grace", "app": "flaskapp"}


def test_flask_resq_help_lists_resq_commands(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["resq", "--help"])
    assert result.exit_code == 0, result.output
    for command in ("worker", "stats", "dead", "workers"):
        assert command in result.output
    worker_help = app.test_cli_runner().invoke(args=["resq", "worker", "--help"])
    assert worker_help.exit_code == 0 and "--concurrency" in worker_help.output


def test_flask_resq_stats_and_tasks_use_the_extension_app(app: Flask) -> None:
    app.test_client().post("/greet/Linus")
    runner = app.test_cli_runner()
    stats = runner.invoke(args=["resq", "stats", "--json"])
    assert stats.exit_code == 0, stats.output
    assert '"default"' in stats.output  # the queue holding the job, in the extension's namespace
    tasks = runner.invoke(args=["resq", "tasks"])
    assert tasks.exit_code == 0, tasks.output
    assert "flaskapp.greet" in tasks.output


def test_docs_show_the_app_module_the_tests_run() -> None:
    module = (REPO_ROOT / "tests/apps/flaskapp.py").read_text()
    code = module[module.index("import os") : module.index("resq_app = jobs.app")]
    assert code in (REPO_ROOT / "docs/flask.md").read_text()
