"""The dashboard answers in a real browser: the overview loads behind Basic auth, without JavaScript errors."""

from __future__ import annotations

from typing import Any

import httpx

from tests.browser.conftest import Dashboard


def test_the_overview_loads_in_chromium(page: Any, dashboard: Dashboard) -> None:
    response = page.goto("/")
    assert response is not None and response.status == 200
    assert "resq" in page.title().lower()
    assert page.locator("body").inner_text().strip()
    assert not page.dialogs


def test_without_credentials_the_dashboard_refuses(dashboard: Dashboard) -> None:
    assert httpx.get(dashboard.url + "/", timeout=10).status_code == 401
