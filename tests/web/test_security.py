"""Who may see and act: credentials on every route kind, CSRF on every action, read-only, escaping,
security headers, and the CLI's refusal to serve an open dashboard beyond loopback."""

from __future__ import annotations

import base64
import re
from types import ModuleType

from click.testing import CliRunner

from resq.cli import main
from resq.ops import Inspector
from resq.web import create_app
from tests.web.conftest import AUTH, TestClient, dashboard, forms_of

ROUTES = ["/", "/queues", "/queues/web", "/workers", "/scheduled", "/dead", "/cron", "/api/stats", "/api/dead"]


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_every_route_kind_needs_the_credentials(web: ModuleType, client: TestClient) -> None:
    web.echo.delay("x")
    anonymous = dashboard(create_app(web.app, auth=AUTH), None)
    for path in [*ROUTES, "/api/stream?limit=1", "/static/dashboard.css", "/static/live.js", "/search?id=x"]:
        refused = anonymous.get(path)
        assert refused.status_code == 401, path
        assert refused.headers["www-authenticate"].startswith("Basic realm="), path
        assert anonymous.get(path, headers=_basic("admin", "wrong")).status_code == 401, path
        assert anonymous.get(path, headers=_basic("root", "s3cret")).status_code == 401, path
    for path in ROUTES:
        assert client.get(path).status_code == 200, path
    assert anonymous.post("/queues/web/pause", data={"csrf": "x"}).status_code == 401
    assert not Inspector(web.app).queues()[0].paused


def test_a_token_works_as_bearer_as_query_and_then_as_its_cookie(web: ModuleType) -> None:
    app = create_app(web.app, token="t0ken-123")
    anonymous = dashboard(app, None)
    assert anonymous.get("/api/stats").status_code == 401
    assert anonymous.get("/api/stats", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert anonymous.get("/api/stats", headers={"Authorization": "Bearer t0ken-123"}).status_code == 200
    browser = dashboard(app, None)
    first = browser.get("/?token=t0ken-123")
    assert first.status_code == 200
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "t0ken-123" not in cookie
    assert browser.get("/dead").status_code == 200  # the cookie alone
    assert 'href="/dead"' in first.text and "token=" not in first.text  # links do not carry the token


def test_actions_need_the_csrf_token_of_the_page(web: ModuleType, client: TestClient) -> None:
    web.echo.delay("x")
    page = client.get("/queues/web")
    (pause,) = [f for f in forms_of(page.text) if f["action"] == "/queues/web/pause"]
    assert pause["fields"]["csrf"]
    refused = client.post("/queues/web/pause", data={"back": "/queues/web"})
    assert refused.status_code == 403 and "CSRF" in refused.text
    assert client.post("/queues/web/pause", data={"csrf": "0" * 64}).status_code == 403
    assert not Inspector(web.app).queues()[0].paused
    other = dashboard(create_app(web.app, auth=AUTH))  # another process
    assert other.post("/queues/web/pause", data=pause["fields"]).status_code == 403
    done = client.post("/queues/web/pause", data=pause["fields"])
    assert done.status_code == 303 and done.headers["location"].startswith("/queues/web?done=paused")
    assert Inspector(web.app).queues()[0].paused
    header = client.post(
        "/queues/web/resume", headers={"X-CSRF-Token": pause["fields"]["csrf"], "Accept": "application/json"}
    )
    assert header.json() == {"ok": True, "message": "resumed queue web"}


def test_read_only_shows_no_button_and_refuses_every_action(web: ModuleType) -> None:
    web.fail.delay("boom")
    job = web.echo.delay("y")
    viewer = dashboard(create_app(web.app, auth=AUTH, read_only=True))
    for path in ["/queues", "/queues/web", "/dead", "/workers", f"/jobs/{job.id}", "/cron"]:
        page = viewer.get(path)
        assert page.status_code == 200 and 'method="post"' not in page.text, path
        assert "read-only" in page.text
    csrf = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', viewer.get("/").text)
    assert csrf is not None
    refused = viewer.post("/queues/web/pause", data={"csrf": csrf.group(1)})
    assert refused.status_code == 403 and "read-only" in refused.text
    assert viewer.post(f"/jobs/{job.id}/cancel", data={"csrf": csrf.group(1)}).status_code == 403
    assert not Inspector(web.app).queues()[0].paused and job.status() == "queued"


def test_arguments_are_escaped_and_redacted_values_hidden(web: ModuleType, client: TestClient) -> None:
    job = web.echo.delay("<script>alert(1)</script>", note="<img src=x onerror=alert(2)>")
    secret = web.login.delay("ann", "hunter2-secret")
    for path in ["/queues/web", f"/jobs/{job.id}"]:
        text = client.get(path).text
        assert "<script>alert(1)" not in text and "<img src=x" not in text, path
    api = client.get("/api/queues/web")  # JSON keeps the text as it is, never to be read as HTML
    assert api.headers["content-type"] == "application/json" and api.headers["x-content-type-options"] == "nosniff"
    assert api.json()["jobs"][0]["args"] == ["<script>alert(1)</script>"]
    queue_page = client.get("/queues/web").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in queue_page
    assert "hunter2-secret" not in queue_page and "***" in queue_page
    assert "hunter2-secret" not in client.get(f"/jobs/{secret.id}").text
    assert "hunter2-secret" not in client.get("/api/queues/web").text
    assert not re.search(r"<script(?![^>]*\ssrc=)", queue_page)  # no inline script on any page


def test_encrypted_arguments_show_as_encrypted(redis_url: str) -> None:
    from resq import Resq, generate_key
    from tests.apps import sealed

    sealed.bind(redis_url, f"k1:{generate_key()}")
    job = sealed.charge.delay("4111 1111 1111 1111", amount=5)
    viewer = dashboard(create_app(Resq(redis_url), auth=AUTH))  # holds no key
    page = viewer.get("/queues/default").text
    assert "&lt;encrypted with key k1&gt;" in page and "4111" not in page
    assert "4111" not in viewer.get(f"/jobs/{job.id}").text
    sealed.app.broker.close()


def test_every_response_carries_the_security_headers(web: ModuleType, client: TestClient) -> None:
    anonymous = dashboard(create_app(web.app, auth=AUTH), None)
    for response in [client.get("/"), client.get("/api/stats"), client.get("/static/live.js"), anonymous.get("/")]:
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"


def test_the_cli_refuses_an_open_dashboard_beyond_loopback(redis_url: str) -> None:
    env = {"RESQ_REDIS_URL": redis_url, "RESQ_APP": None, "RESQ_DASHBOARD_AUTH": None, "RESQ_DASHBOARD_TOKEN": None}
    for host in ("0.0.0.0", "::", "10.1.2.3", "example.org"):
        result = CliRunner().invoke(main, ["dashboard", "--host", host], env=env)
        assert result.exit_code == 2, result.output
        (line,) = result.output.strip().splitlines()
        assert line == (
            f"Error: refusing to serve the dashboard on {host} without credentials: "
            "add --auth USER:PASS or --token TOKEN"
        )
    bad = CliRunner().invoke(main, ["dashboard", "--auth", "nocolon"], env=env)
    assert bad.exit_code == 2 and "USER:PASS" in bad.output and len(bad.output.strip().splitlines()) == 1


MISSING_EXTRA = """\
import sys
sys.modules["starlette"] = None  # as if the web extra were not installed
from resq.cli import main
main(["dashboard"])
"""


def test_without_the_web_extra_the_command_says_how_to_install_it(redis_url: str) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    env = {**os.environ, "RESQ_REDIS_URL": redis_url, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", MISSING_EXTRA], capture_output=True, text=True, timeout=60, env=env, cwd=REPO_ROOT
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "Error: resq dashboard needs the web extra: pip install 'resq[web]'"
