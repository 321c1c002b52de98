"""The dashboard beside real workers: dead jobs shown and retried through the page's form until they
succeed, the workers page and its controls, and a real ``resq dashboard`` process."""

from __future__ import annotations

import re
from html import unescape
from types import ModuleType

import httpx

from resq.ops import Inspector
from tests.conftest import RunResq, RunWorker
from tests.helpers import burst, read_log, wait_for
from tests.web.conftest import APP, AUTH, TestClient, forms_of, post_form


def test_dead_jobs_are_linked_from_home_shown_filtered_and_retried_through_the_form(
    web: ModuleType, client: TestClient, run_worker: RunWorker
) -> None:
    web.fail.delay("disk <full>")
    job = web.comeback.delay(42)
    burst(run_worker, APP, "-q", "web")
    home = client.get("/").text
    link = re.search(r'<a class="card" href="(/dead)">', home)
    assert link is not None and "web" in home
    dead = client.get(link.group(1)).text
    assert "ValueError: disk &lt;full&gt;" in dead and "ConnectionError: order 42: payment service down" in dead
    only = client.get("/dead?error=ConnectionError").text
    assert "payment service down" in only and "disk" not in only.split("<table", 1)[1]
    assert "disk" not in client.get("/dead?task=web.comeback").text.split("<table", 1)[1]
    assert client.get("/api/dead?task=web.fail").json()["jobs"][0]["error_type"] == "ValueError"
    (retry,) = [f for f in forms_of(dead) if f["action"] == f"/jobs/{job.id}/retry"]
    assert post_form(client, retry, csrf="forged").status_code == 403
    assert job.status() == "dead"
    done = post_form(client, retry)
    assert done.status_code == 303 and job.status() == "queued"
    assert f"requeued {job.id} on web" in unescape(client.get(done.headers["location"]).text)
    worker = run_worker(APP, "-q", "web")
    assert job.result(timeout=20) == "order 42 paid"
    workers = wait_for(lambda: Inspector(web.app).workers(), message="a live worker")
    page = client.get("/workers").text
    assert workers[0].host in page and str(workers[0].pid) in page and "idle" in page
    target = workers[0].supervisor or workers[0].id
    (pause,) = [f for f in forms_of(page) if f["action"].endswith("/pause") and "all" not in f["action"]]
    assert post_form(client, pause).status_code == 303
    wait_for(lambda: Inspector(web.app).workers()[0].paused, message="the worker paused")
    assert "paused" in client.get("/workers").text and target in page
    assert worker.poll() is None, read_log(worker)


def test_retry_all_and_purge_from_the_dead_page(web: ModuleType, client: TestClient, run_worker: RunWorker) -> None:
    for i in range(3):
        web.fail.delay(f"boom {i}")
    burst(run_worker, APP, "-q", "web")
    inspector = Inspector(web.app)
    page = client.get("/dead").text
    (retry_all,) = [f for f in forms_of(page) if f["action"] == "/dead/retry-all"]
    assert post_form(client, retry_all).status_code == 303
    assert inspector.dead_count() == 0 and inspector.queues()[0].waiting == 3
    burst(run_worker, APP, "-q", "web")
    (purge,) = [f for f in forms_of(client.get("/dead").text) if f["action"] == "/dead/purge"]
    assert post_form(client, purge).status_code == 400 and inspector.dead_count() == 3  # not confirmed
    assert post_form(client, purge, confirm="yes").status_code == 303
    assert inspector.dead_count() == 0


def test_a_real_dashboard_process_serves_the_api_with_basic_auth(
    web: ModuleType, run_resq: RunResq, free_port: int
) -> None:
    web.echo.delay(1)
    proc = run_resq("dashboard", "--host", "127.0.0.1", "--port", str(free_port), "--auth", "admin:s3cret")
    url = f"http://127.0.0.1:{free_port}"
    stats = wait_for(lambda: httpx.get(f"{url}/api/stats", auth=AUTH, timeout=2), timeout=30, message="dashboard up")
    assert stats.status_code == 200 and stats.json()["queues"][0]["name"] == "web"
    assert httpx.get(f"{url}/", timeout=2).status_code == 401
    home = httpx.get(f"{url}/", auth=AUTH, timeout=2)
    assert home.status_code == 200 and ">web</a>" in home.text
    assert "dashboard_started" in read_log(proc) and f"url=http://127.0.0.1:{free_port}/" in read_log(proc)
    assert proc.poll() is None
