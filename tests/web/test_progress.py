"""The job page shows a job's progress: a bar with its percentage, note and time, kept live (``job.js``)
while the job runs, and the last report of a finished job; its JSON twin carries it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from types import ModuleType

import pytest
import redis

from resq.testing import drain
from tests.apps import progressapp as progress_module
from tests.conftest import RunWorker
from tests.helpers import read_log, wait_for
from tests.web.conftest import TestClient

APP = "tests.apps.progressapp:app"


@pytest.fixture
def progressapp(redis_url: str, web: ModuleType) -> Iterator[ModuleType]:
    """``tests.apps.progressapp`` on the dashboard's database and namespace (its jobs show there)."""
    progress_module.bind(redis_url)
    yield progress_module
    progress_module.app.broker.close()


def test_a_finished_jobs_page_shows_its_last_progress(progressapp: ModuleType, client: TestClient) -> None:
    job = progressapp.once.delay(0.42, "page 3 of 7 <b>")
    silent = progressapp.refused.delay(2)  # reports nothing (refused)
    assert drain(progressapp.app, [progressapp.QUEUE]) == 2
    page = client.get(f"/jobs/{job.id}").text
    bar = re.search(r'<progress id="progress-bar" max="1" value="([^"]+)"[^>]*>', page)
    assert bar is not None and float(bar.group(1)) == 0.42
    assert '<span class="progress-pct" id="progress-pct">42%</span>' in page
    assert "page 3 of 7 &lt;b&gt;" in page and "page 3 of 7 <b>" not in page  # escaped
    assert re.search(r"reported \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", page)
    assert "/static/job.js" not in page  # finished: nothing to keep live
    shown = client.get(f"/api/jobs/{job.id}").json()["job"]["progress"]
    assert shown["fraction"] == 0.42 and shown["note"] == "page 3 of 7 <b>" and shown["at"].endswith("+00:00")
    assert 'id="progress-bar"' not in client.get(f"/jobs/{silent.id}").text  # no report, not running: no bar


def test_a_running_jobs_page_shows_its_bar_kept_live(
    progressapp: ModuleType, client: TestClient, redis_client: redis.Redis, run_worker: RunWorker
) -> None:
    job = progressapp.pages.delay()
    worker = run_worker(APP, "-q", progressapp.QUEUE, "-c", "1")
    wait_for(job.progress, timeout=30, message=f"progress of {job.id}\n{read_log(worker)}")
    page = client.get(f"/jobs/{job.id}").text
    assert f'data-live-job="{job.id}"' in page and 'src="/static/job.js"' in page
    assert 'value="0.42"' in page and "42%" in page and "page 3 of 7" in page
    script = client.get("/static/job.js")
    assert script.status_code == 200 and "/api/jobs/" in script.text and "textContent" in script.text
    assert "innerHTML" not in script.text
    redis_client.rpush(progressapp.GATE, "go")
    assert job.result(timeout=30) == "opened"
    done = client.get(f"/jobs/{job.id}").text
    assert 'value="1.0"' in done and "100%" in done and "data-live-job" not in done
