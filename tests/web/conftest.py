"""Fixtures of the dashboard tests: the test app bound to the test's database, a client of its dashboard
(Basic auth ``admin:s3cret``), and a reader of the forms on a page (to post them as a browser would)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from html.parser import HTMLParser
from types import ModuleType
from typing import Any

import pytest

with warnings.catch_warnings():  # starlette 1.x prefers httpx2 for its test client; httpx still works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from resq.web import create_app
from tests.apps import web as web_module

AUTH = ("admin", "s3cret")
APP = "tests.apps.web:app"


@pytest.fixture
def web(redis_url: str) -> Iterator[ModuleType]:
    """``tests.apps.web`` bound to this test's database."""
    web_module.bind(redis_url)
    yield web_module
    web_module.app.broker.close()


@pytest.fixture
def client(web: ModuleType) -> Iterator[TestClient]:
    """A client of the dashboard of ``tests.apps.web`` with Basic auth ``admin:s3cret`` (no redirects followed)."""
    with dashboard(create_app(web.app, auth=AUTH)) as found:
        yield found


def dashboard(asgi: Any, auth: tuple[str, str] | None = AUTH) -> TestClient:
    """A client of ``asgi`` that sends Basic auth ``auth`` (None: none) and follows no redirect."""
    found = TestClient(asgi, follow_redirects=False)
    if auth is not None:
        found.auth = auth
    return found


class Forms(HTMLParser):
    """The forms of a page: ``[{"action", "method", "fields": {name: value}, "button"}]`` (hidden inputs and
    ticked-by-default checkboxes are not ticked: a test ticks ``confirm`` itself)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._in_button = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form":
            self.forms.append(
                {"action": found.get("action"), "method": found.get("method"), "fields": {}, "button": ""}
            )
        elif tag == "input" and self.forms and found.get("type") == "hidden":
            self.forms[-1]["fields"][found.get("name")] = found.get("value") or ""
        elif tag == "button" and self.forms:
            self._in_button = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "button":
            self._in_button = False

    def handle_data(self, data: str) -> None:
        if self._in_button and self.forms:
            self.forms[-1]["button"] += data.strip()


def forms_of(html: str) -> list[dict[str, Any]]:
    """The forms of ``html`` (see :class:`Forms`)."""
    parser = Forms()
    parser.feed(html)
    return parser.forms


def post_form(client: TestClient, form: dict[str, Any], **extra: str) -> Any:
    """Submit ``form`` as a browser would (its hidden fields and ``extra``), URL-encoded."""
    return client.post(form["action"], data={**form["fields"], **extra})
