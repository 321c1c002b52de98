"""Fixtures of the dashboard's browser tests: headless Chromium (Debian's ``chromium``, driven by Playwright) on
a real ``resq dashboard`` subprocess, with real workers, on the test's own Redis database.

- ``browser`` (session): ``/usr/bin/chromium`` launched by Playwright (never a downloaded browser). When it is
  missing the tests FAIL (CI must run them): ``.ci/run`` installs it (``apt-get install chromium``).
- ``dashboard`` (function): ``resq dashboard -A tests.apps.browser:app --port P --auth admin:s3cret`` started
  with ``run_resq`` and answering; the test process's ``tests.apps.browser`` app is bound to the same database.
- ``page`` (function): a new browser context (Basic auth through ``http_credentials``, 1280×800) and a page
  on it. Every JavaScript dialog is recorded (and dismissed) in ``page.dialogs``; an uncaught JavaScript error
  on any page fails the test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any

import httpx
import pytest

from tests.apps import browser as browser_app
from tests.conftest import RunResq
from tests.helpers import read_log

CHROMIUM = Path("/usr/bin/chromium")
APP_REF = "tests.apps.browser:app"
USER, PASSWORD = "admin", "s3cret"
VIEWPORT = {"width": 1280, "height": 800}
#: Playwright's default wait for a selector or an expectation, in ms.
TIMEOUT_MS = 10_000
START_TIMEOUT_S = 30.0


@pytest.fixture(scope="package")  # not the session: Playwright's loop runs in this thread while it lives, and
def browser() -> Iterator[Any]:  # tests after this package call asyncio.run (eager mode, async tasks)
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the dashboard's browser tests need Debian's headless Chromium. "
            "Install it with `apt-get install --no-install-recommends chromium` (.ci/run does so); "
            "never `playwright install`.",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Dashboard:
    """A running ``resq dashboard`` subprocess."""

    url: str
    proc: Popen[bytes]
    auth: tuple[str, str] = (USER, PASSWORD)
    app: Any = field(default=None)

    def get(self, path: str) -> httpx.Response:
        """GET ``path`` from the dashboard, outside the browser (with its credentials)."""
        return httpx.get(self.url + path, auth=self.auth, timeout=10)


def start_dashboard(run_resq: RunResq, port: int, *args: str) -> Dashboard:
    """Start ``resq dashboard`` on ``port`` and wait until it answers ``/`` with 200."""
    proc = run_resq(
        "dashboard", "--host", "127.0.0.1", "--port", str(port), "--auth", f"{USER}:{PASSWORD}", *args, app_ref=APP_REF
    )
    board = Dashboard(url=f"http://127.0.0.1:{port}", proc=proc, app=browser_app.app)
    deadline = time.monotonic() + START_TIMEOUT_S
    last: object = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"resq dashboard exited {proc.returncode} before answering:\n{read_log(proc)[-3000:]}")
        try:
            response = board.get("/")
        except httpx.TransportError as exc:
            last = exc
        else:
            if response.status_code == 200:
                return board
            if response.status_code >= 500:
                pytest.fail(f"resq dashboard answered / with {response.status_code}:\n{read_log(proc)[-3000:]}")
            last = f"{response.status_code} {response.text[:300]}"
        time.sleep(0.1)
    pytest.fail(f"resq dashboard did not answer 200 on / within {START_TIMEOUT_S:.0f} s (last: {last})")


@pytest.fixture
def dashboard(run_resq: RunResq, free_port: int, redis_url: str) -> Dashboard:
    browser_app.bind(redis_url)
    return start_dashboard(run_resq, free_port)


@pytest.fixture
def page(browser: Any, dashboard: Dashboard) -> Iterator[Any]:
    context = browser.new_context(
        base_url=dashboard.url,
        http_credentials={"username": USER, "password": PASSWORD},
        viewport=VIEWPORT,
    )
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    errors: list[str] = []
    tab.dialogs = []

    def on_dialog(dialog: Any) -> None:
        tab.dialogs.append(f"{dialog.type}: {dialog.message}")
        # A confirm() before a destructive action is the dashboard's business: accept it; alerts are recorded.
        dialog.accept() if dialog.type == "confirm" else dialog.dismiss()

    tab.on("dialog", on_dialog)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield tab
    finally:
        context.close()
    assert not errors, f"uncaught JavaScript errors on the dashboard's pages: {errors}"
