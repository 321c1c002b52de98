"""The dashboard in a real browser (headless Chromium, Playwright), on a real ``resq dashboard`` and real
workers: retry a dead job and watch it succeed, pause and resume a queue, the live overview, escaping."""

from __future__ import annotations

import re
import time
from typing import Any

from playwright.sync_api import expect

from resq.ops import Inspector
from tests.apps import browser as browser_app
from tests.browser.conftest import APP_REF, Dashboard
from tests.conftest import RunWorker
from tests.helpers import burst, wait_for


def nav(page: Any, label: str) -> Any:
    """The navigation bar's link to a page."""
    return page.get_by_role("navigation", name="pages").get_by_role("link", name=label, exact=True)


def job_status(page: Any) -> str:
    """The status the job page shows."""
    return str(page.locator("main .status").first.inner_text()).strip()


def test_retry_a_dead_job_from_its_page_and_watch_it_succeed(
    page: Any, dashboard: Dashboard, run_worker: RunWorker, redis_client: Any
) -> None:
    job = browser_app.comeback.delay(1042)
    run_worker(APP_REF, "-q", "default")
    wait_for(lambda: job.status() == "dead", message="the job to fail once and be dead")

    page.goto("/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator('[data-stat="dead"]')).to_have_text("1")
    nav(page, "Dead").click()
    expect(page).to_have_url(re.compile(r"/dead$"))
    row = page.locator("tr", has=page.get_by_role("link", name=job.id))
    expect(row).to_contain_text("ConnectionError")
    row.get_by_role("link", name=job.id).click()

    expect(page).to_have_url(re.compile(rf"/jobs/{job.id}$"))
    expect(page.locator("main")).to_contain_text("payment gateway refused order 1042")
    assert job_status(page) == "dead"
    redis_client.set(browser_app.SWITCH_KEY, 1)  # the next attempt succeeds
    page.get_by_role("button", name="Retry").click()
    expect(page.get_by_role("status")).to_contain_text(f"requeued {job.id}")

    deadline = time.monotonic() + 15
    while job_status(page) != "succeeded" and time.monotonic() < deadline:
        time.sleep(0.3)
        page.reload()
    assert job_status(page) == "succeeded", page.locator("main").inner_text()
    expect(page.locator("main")).to_contain_text("order 1042 charged")
    assert job.result(timeout=1) == "order 1042 charged"
    page.goto("/")
    expect(page.locator('[data-stat="dead"]')).to_have_text("0")


def test_pause_a_queue_and_the_worker_stops_taking_its_jobs(
    page: Any, dashboard: Dashboard, run_worker: RunWorker
) -> None:
    inspector = Inspector(browser_app.app)
    first = browser_app.build_report.delay("warm-up")
    run_worker(APP_REF, "-q", "reports")
    assert first.result(timeout=20) == 100

    page.goto("/queues")
    row = page.locator("tr", has=page.get_by_role("link", name="reports", exact=True))
    row.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("status")).to_contain_text("paused queue reports")
    expect(row.locator(".status")).to_have_text("paused")
    expect(row.get_by_role("button", name="Resume")).to_be_visible()

    jobs = browser_app.build_report.map([(f"report-{n}",) for n in range(5)])
    time.sleep(2.5)  # a worker notices a pause within 1 s: long enough to see it take nothing
    assert [j.status() for j in jobs] == ["queued"] * 5
    page.reload()
    expect(row.locator("td").nth(1)).to_have_text("5")  # waiting

    row.get_by_role("button", name="Resume").click()
    expect(page.get_by_role("status")).to_contain_text("resumed queue reports")
    expect(row.locator(".status")).to_have_text("active")
    for job in jobs:
        assert job.result(timeout=20) == 100
    assert next(q for q in inspector.queues() if q.name == "reports").waiting == 0
    page.reload()
    expect(row.locator("td").nth(1)).to_have_text("0")


def test_the_overview_changes_live_without_a_reload(page: Any, dashboard: Dashboard, run_worker: RunWorker) -> None:
    browser_app.add.delay(0, 0)
    burst(run_worker, APP_REF, "-q", "default")

    page.goto("/")
    processed = page.locator('[data-stat="today.processed"]')
    expect(processed).to_have_text("1")
    page.evaluate("window.__sameDocument = 'no reload happened'")
    updated = page.locator("#updated").inner_text()

    browser_app.add.map((i, i) for i in range(6))
    waiting = page.locator('#queues tr[data-queue="default"] [data-field="waiting"]')
    expect(waiting).to_have_text("6")
    burst(run_worker, APP_REF, "-q", "default")
    expect(processed).to_have_text("7")
    expect(waiting).to_have_text("0")
    expect(page.locator("#updated")).not_to_have_text(updated)
    assert page.evaluate("window.__sameDocument") == "no reload happened"


def test_a_script_in_a_job_argument_shows_as_text(page: Any, dashboard: Dashboard, run_worker: RunWorker) -> None:
    payload = "<script>alert(1)</script>"
    job = browser_app.echo.delay(payload, note='"><img src=x onerror=alert(2)>')

    page.goto("/queues/default")
    expect(page.locator("main")).to_contain_text(payload)
    burst(run_worker, APP_REF, "-q", "default")
    page.goto(f"/jobs/{job.id}")
    main = page.locator("main")
    expect(main).to_contain_text(payload)
    expect(main).to_contain_text("onerror=alert(2)")
    page.wait_for_timeout(300)  # time for a stray script or image handler to fire
    assert page.dialogs == []
    assert page.locator("script", has_text="alert(1)").count() == 0
    assert page.locator("img[src=x]").count() == 0
