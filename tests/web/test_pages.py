"""The pages and their JSON twins: the overview, a queue's jobs page by page, pause / resume / clear,
the job, scheduled, dead and cron pages, search, errors, the event stream, and mounting under a prefix."""

from __future__ import annotations

import json
import re
from types import ModuleType

from starlette.applications import Starlette
from starlette.routing import Mount

from resq.ops import Inspector
from resq.web import create_app
from resq_scheduler.store import Store
from tests.web.conftest import TestClient, dashboard, forms_of, post_form


def _form(html: str, action: str) -> dict[str, object]:
    (found,) = [f for f in forms_of(html) if f["action"] == action]
    return found


def test_the_overview_names_the_queues_and_its_json_twin_has_the_numbers(web: ModuleType, client: TestClient) -> None:
    for i in range(3):
        web.echo.delay(i)
    web.echo.apply_async(args=(1,), queue="mail")
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert re.search(r'<a href="/queues/web">web</a>', page.text) and 'href="/queues/mail"' in page.text
    for path in ("/queues", "/workers", "/scheduled", "/cron", "/dead"):
        assert f'href="{path}"' in page.text, path  # the persistent navigation
    assert '<svg class="chart"' in page.text and 'src="/static/live.js"' in page.text
    stats = client.get("/api/stats").json()
    assert {q["name"]: q["waiting"] for q in stats["queues"]} == {"mail": 1, "web": 3}
    assert len(stats["per_minute"]["processed"]) == 60 and stats["chart"]["max"] >= 1
    assert stats["waiting"] == 4 and stats["dead"] == 0 and stats["workers"] == 0
    assert 'base + "/api/stats"' in client.get("/static/live.js").text


def test_a_queue_lists_its_jobs_page_by_page(web: ModuleType, client: TestClient) -> None:
    ids = [job.id for job in web.echo.map([(i,) for i in range(60)])]
    seen: list[str] = []
    page = client.get("/queues/web?limit=25")
    while True:
        rows = re.findall(r'<a class="mono" href="/jobs/([^"]+)">', page.text)
        assert len(rows) <= 25
        seen += rows
        following = re.search(r'<a rel="next" href="(/queues/web\?after=[^"]+)">', page.text)
        if following is None:
            break
        page = client.get(following.group(1).replace("&amp;", "&") + "&limit=25")
    assert seen == ids  # every job once, in the order they are served
    first = client.get("/api/queues/web?limit=50").json()
    assert len(first["jobs"]) == 50 and first["next"]
    rest = client.get(f"/api/queues/web?limit=50&after={first['next']}").json()
    assert [j["id"] for j in rest["jobs"]] == ids[50:] and rest["next"] is None
    assert client.get("/queues/web?after=nonsense").status_code == 400


def test_pause_resume_and_clear_a_queue_through_its_page(web: ModuleType, client: TestClient) -> None:
    web.echo.delay(1)
    web.echo.delay(2)
    inspector = Inspector(web.app)
    page = client.get("/queues/web").text
    assert post_form(client, _form(page, "/queues/web/pause")).status_code == 303
    assert inspector.queues()[0].paused
    page = client.get("/queues/web").text
    assert "/queues/web/pause" not in page
    assert post_form(client, _form(page, "/queues/web/resume")).status_code == 303
    assert not inspector.queues()[0].paused
    clear = _form(client.get("/queues/web").text, "/queues/web/clear")
    unconfirmed = post_form(client, clear)
    assert unconfirmed.status_code == 400 and inspector.queues()[0].waiting == 2
    done = post_form(client, clear, confirm="yes")
    assert done.status_code == 303 and "2+jobs+deleted" in done.headers["location"]
    assert inspector.queues()[0].waiting == 0


def test_scheduled_jobs_run_now_or_are_deleted(web: ModuleType, client: TestClient) -> None:
    later = web.echo.enqueue_in(3600, "later")
    other = web.echo.enqueue_in(7200, "other")
    page = client.get("/scheduled").text
    assert page.index(later.id) < page.index(other.id) and "in 59m" in page
    assert post_form(client, _form(page, f"/jobs/{later.id}/run-now")).status_code == 303
    assert later.status() == "queued"
    assert post_form(client, _form(client.get("/scheduled").text, f"/jobs/{other.id}/delete")).status_code == 303
    assert other.status() == "cancelled"
    assert client.get("/api/scheduled").json()["jobs"] == []


def test_scheduled_jobs_show_their_arguments_redacted(web: ModuleType, client: TestClient) -> None:
    web.login.enqueue_in(3600, "ada", password="s3cret-pw")
    page = client.get("/scheduled").text
    assert "ada" in page and "***" in page and "s3cret-pw" not in page
    [job] = client.get("/api/scheduled").json()["jobs"]
    assert job["preview"] == '"ada", password="***"' and job["kwargs"] == {"password": "***"}


def test_the_job_page_shows_its_record_and_history(web: ModuleType, client: TestClient) -> None:
    job = web.echo.delay("hello", n=3)
    page = client.get(f"/jobs/{job.id}").text
    assert "web.echo" in page and "&#34;hello&#34;" in page and "enqueued" in page
    assert f'action="/jobs/{job.id}/cancel"' in page
    assert client.get(f"/api/jobs/{job.id}").json()["job"]["kwargs"] == {"n": 3}
    assert post_form(client, _form(page, f"/jobs/{job.id}/cancel")).status_code == 303
    assert job.status() == "cancelled"


def test_search_finds_a_job_and_unknown_ids_and_bad_input_say_so(web: ModuleType, client: TestClient) -> None:
    job = web.echo.delay(1)
    found = client.get(f"/search?id={job.id}")
    assert found.status_code == 303 and found.headers["location"] == f"/jobs/{job.id}"
    missing = client.get("/search?id=no-such-job")
    assert missing.status_code == 404 and "no job with id" in missing.text and "result_ttl" in missing.text
    assert client.get("/jobs/no-such-job").status_code == 404
    assert client.get("/api/jobs/no-such-job").json()["status"] == 404
    for path in ("/dead?page=0", "/dead?page=x", "/queues/nope", "/dead?queue=nope", "/scheduled?limit=100000"):
        bad = client.get(path)
        assert bad.status_code == 400, path
    assert "no queue named &#39;nope&#39;" in client.get("/queues/nope").text


def test_the_cron_page_lists_entries_in_their_time_zone_and_acts_on_them(web: ModuleType, client: TestClient) -> None:
    page = client.get("/cron")
    assert page.status_code == 200 and "web.nightly" in page.text and "0 3 * * * (Europe/Paris)" in page.text
    assert "03:00 CE" in page.text  # next fires at 03:00 Paris time (CET or CEST)
    assert post_form(client, _form(page.text, "/cron/pause")).status_code == 303
    assert "web.nightly" in Store(web.app).state().paused
    assert post_form(client, _form(client.get("/cron").text, "/cron/resume")).status_code == 303
    assert "web.nightly" not in Store(web.app).state().paused
    run = post_form(client, _form(client.get("/cron").text, "/cron/run"))
    assert run.status_code == 303 and "enqueued+job" in run.headers["location"]
    assert [q.waiting for q in Inspector(web.app).queues() if q.name == "web"] == [1]
    assert client.get("/api/cron").json()["rows"][0]["key"] == "web.nightly"


def test_the_event_stream_sends_the_overview(web: ModuleType, client: TestClient) -> None:
    web.echo.delay(1)
    response = client.get("/api/stream?limit=1")
    assert response.headers["content-type"].startswith("text/event-stream")
    event, data = response.text.strip().split("\n")
    assert event == "event: stats" and json.loads(data.removeprefix("data: "))["waiting"] == 1


def test_mounted_under_a_prefix_its_links_and_forms_carry_it(web: ModuleType) -> None:
    web.echo.delay(1)
    outer = Starlette(routes=[Mount("/resq", create_app(web.app, auth=("admin", "s3cret")))])
    client = dashboard(outer)
    page = client.get("/resq/").text
    assert 'href="/resq/queues/web"' in page and 'href="/resq/static/dashboard.css"' in page
    queue_page = client.get("/resq/queues/web").text
    pause = _form(queue_page, "/resq/queues/web/pause")
    done = post_form(client, pause)
    assert done.status_code == 303 and done.headers["location"].startswith("/resq/queues/web?done=")
    assert Inspector(web.app).queues()[0].paused
    assert client.get("/resq/static/live.js").status_code == 200
