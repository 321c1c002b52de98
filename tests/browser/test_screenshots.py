"""Every page of the dashboard, in Chromium, on a realistic scene (tests/browser/scene.py): each must answer
200 and render without a JavaScript error. With ``RESQ_SCREENSHOTS=1`` the pictures (1280×800, and the
overview in dark mode too) are written to ``docs/img/dashboard-<page>.png`` (those of docs/dashboard.md);
otherwise to the test's temporary folder, so CI takes them all the same but leaves the tree alone."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import scene
from tests.browser.conftest import PASSWORD, USER, VIEWPORT, Dashboard
from tests.conftest import REPO_ROOT, RunWorker
from tests.helpers import wait_for

DOCS_IMG = REPO_ROOT / "docs" / "img"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where the pictures go: docs/img with ``RESQ_SCREENSHOTS=1``, else a temporary folder."""
    return DOCS_IMG if os.environ.get("RESQ_SCREENSHOTS") == "1" else tmp_path


@pytest.fixture
def dark_page(browser: Any, dashboard: Dashboard) -> Iterator[Any]:
    context = browser.new_context(
        base_url=dashboard.url,
        http_credentials={"username": USER, "password": PASSWORD},
        viewport=VIEWPORT,
        color_scheme="dark",
    )
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield tab
    finally:
        context.close()
    assert not errors, f"uncaught JavaScript errors in dark mode: {errors}"


def snap(page: Any, path: str, out: Path, name: str, status: int = 200) -> None:
    """Open ``path``, check its status, let the page settle, save ``dashboard-<name>.png``."""
    response = page.goto(path)
    assert response is not None and response.status == status, f"GET {path}: {response and response.status}"
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(out / f"dashboard-{name}.png"))


def test_every_page_renders_and_is_pictured(
    page: Any, dark_page: Any, dashboard: Dashboard, run_worker: RunWorker, shots: Path
) -> None:
    made = scene.build(run_worker)
    pages = [
        ("/", "overview"),
        ("/queues", "queues"),
        ("/queues/reports", "queue"),
        (f"/jobs/{made.dead.id}", "job"),
        ("/workers", "workers"),
        ("/scheduled", "scheduled"),
        ("/cron", "cron"),
        ("/dead", "dead"),
        (f"/jobs/{made.chord.id}", "workflow"),
        (f"/batches/{made.chord.id}", "batch"),
    ]
    for path, name in pages:
        snap(page, path, shots, name)
    # The search box: an id that is no job's (a found id redirects to its job page, pictured above).
    page.goto("/")
    page.get_by_role("searchbox").fill("01nosuchjob")
    page.get_by_role("button", name="Find").click()
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(shots / "dashboard-search.png"))
    assert "01nosuchjob" in page.locator("main").inner_text()
    snap(dark_page, "/", shots, "overview-dark")
    snap(dark_page, f"/jobs/{made.dead.id}", shots, "job-dark")
    assert page.dialogs == []
    made.running.cancel()  # else the worker's warm shutdown waits for it at teardown
    wait_for(lambda: made.running.status() == "cancelled", message="the slow job to stop")
    assert len(list(shots.glob("dashboard-*.png"))) >= len(pages) + 3
