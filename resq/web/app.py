"""The dashboard's routes: each page (HTML) with its JSON twin under ``/api/``, and the actions (POST).

Every route reads through the :class:`~resq.ops.Inspector` (nothing here sends a Redis command); lists are
pages of bounded reads. Actions are HTML form POSTs that carry the CSRF token and redirect back (303)
with a one-line message; with ``Accept: application/json`` they answer JSON instead.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from resq.errors import BrokerUnavailable, ConfigError, ResqError, UnknownJob
from resq.job import JobStatus
from resq.ops import CONTROL_COMMANDS, Inspector
from resq.settings import validate_name
from resq.web import views
from resq.web.auth import Guard, SecurityMiddleware
from resq.web.charts import chart_svg
from resq.web.pages import ExtraPage, load_pages

__all__ = ["BadRequest", "Dashboard"]

#: Jobs per page on the queue, dead and scheduled pages (``?limit=`` changes it, up to ``MAX_LIMIT``).
PAGE_SIZE = 50
MAX_LIMIT = 500
#: The largest form body an action accepts, in bytes.
MAX_FORM_BYTES = 64 * 1024
#: Seconds between two events of ``/api/stream``.
STREAM_EVERY_S = 2.0

#: The dashboard's own path segments (an extra page may not take one).
RESERVED = {"api", "static", "queues", "jobs", "workers", "scheduled", "dead", "search"}


class BadRequest(ResqError):
    """A bad page number, an unknown queue, a missing confirmation: answered 400 with one line."""


class Forbidden(ResqError):
    """A POST without a valid CSRF token, or any POST in read-only mode: answered 403."""


class Dashboard:
    """The routes of one dashboard over one app.

    Args:
        inspector: what the pages read and act through.
        guard: the credentials and the CSRF secret.
        read_only: refuse every action (403) and show no buttons.
    """

    def __init__(self, inspector: Inspector, guard: Guard, read_only: bool) -> None:
        self.inspector = inspector
        self.guard = guard
        self.read_only = read_only
        self.extras = load_pages(inspector.app, set(RESERVED))
        self.env = Environment(loader=PackageLoader("resq.web", "templates"), autoescape=select_autoescape(["html"]))
        self.env.filters.update(
            when=views.when, ago=views.ago, since=views.since, until=views.until, wait=views.wait, tojson=views.as_json
        )
        #: the navigation: every page, in this order
        self.nav = [
            ("/", "Overview"),
            ("/queues", "Queues"),
            ("/workers", "Workers"),
            ("/scheduled", "Scheduled"),
            *[(f"/{page.slug}", page.title) for page in self.extras],
            ("/dead", "Dead"),
        ]

    # -- the application ---------------------------------------------------------------------------

    def asgi(self) -> Any:
        """The ASGI application: the routes behind the security middleware."""
        handlers: dict[Any, Callable[..., Any]] = {
            UnknownJob: self._error(404, "not found"),
            BadRequest: self._error(400, "bad request"),
            ConfigError: self._error(400, "bad request"),
            Forbidden: self._error(403, "forbidden"),
            BrokerUnavailable: self._error(503, "Redis is unavailable"),
        }
        app = Starlette(routes=self.routes(), exception_handlers=handlers)
        return SecurityMiddleware(app, self.guard)

    def routes(self) -> list[BaseRoute]:
        """Every page, its JSON twin, and every action."""
        pages: list[tuple[str, Callable[[Request], dict[str, Any]], str]] = [
            ("/", self.overview_data, "overview.html"),
            ("/queues", self.queues_data, "queues.html"),
            ("/queues/{name}", self.queue_data, "queue.html"),
            ("/jobs/{job_id}", self.job_data, "job.html"),
            ("/batches/{batch_id}", self.batch_data, "batch.html"),
            ("/workers", self.workers_data, "workers.html"),
            ("/scheduled", self.scheduled_data, "scheduled.html"),
            ("/dead", self.dead_data, "dead.html"),
        ]
        for page in self.extras:
            pages.append((f"/{page.slug}", self._extra_data(page), "extra.html"))
        routes: list[BaseRoute] = [Mount("/static", StaticFiles(packages=[("resq.web", "static")]), name="static")]
        for path, data, template in pages:
            routes.append(Route(path, self._page(data, template), methods=["GET"]))
            routes.append(Route("/api/stats" if path == "/" else f"/api{path}", self._api(data), methods=["GET"]))
        routes += [
            Route("/search", self.search, methods=["GET"]),
            Route("/api/stream", self.stream, methods=["GET"]),
            Route("/queues/{name}/{action}", self._action(self.queue_action), methods=["POST"]),
            Route("/jobs/{job_id}/{action}", self._action(self.job_action), methods=["POST"]),
            Route("/workers/{target}/{action}", self._action(self.worker_action), methods=["POST"]),
            Route("/dead/{action}", self._action(self.dead_action), methods=["POST"]),
            *[
                Route(f"/{p.slug}/{{action}}", self._action(self._extra_action(p)), methods=["POST"])
                for p in self.extras
            ],
        ]
        return routes

    # -- rendering ---------------------------------------------------------------------------------

    def _page(self, data: Callable[[Request], dict[str, Any]], template: str) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            return self.render(request, template, data(request))

        return endpoint

    def _api(self, data: Callable[[Request], dict[str, Any]]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            found = data(request)
            return _json({k: v for k, v in found.items() if not k.startswith("_")})

        return endpoint

    def render(self, request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
        """``template`` with ``context`` and what every page needs (base path, CSRF token, navigation)."""
        identity = request.scope.get("resq.identity", "anonymous")
        common = {
            "base": _base(request),
            "here": request.url.path[len(request.scope.get("root_path", "")) :] or "/",
            "back": _back(request),
            "csrf": self.guard.csrf_token(identity),
            "read_only": self.read_only,
            "namespace": self.inspector.broker.keys.namespace,
            "nav": self.nav,
            "done": request.query_params.get("done", ""),
        }
        html = self.env.get_template(template).render({**context, **common})
        return HTMLResponse(html, status_code=status)

    def _error(self, status: int, title: str) -> Callable[[Request, Exception], Any]:
        async def handler(request: Request, exc: Exception) -> Response:
            message = str(exc).strip() or title
            if _wants_json(request):
                return _json({"error": message, "status": status}, status)
            context = {"status": status, "title": title, "message": message, "hint": _hint(status)}
            return self.render(request, "error.html", context, status)

        return handler

    # -- pages -------------------------------------------------------------------------------------

    def overview_data(self, request: Request) -> dict[str, Any]:
        """The overview: cards, the chart, the queues."""
        data = views.stats_data(self.inspector)
        return {**data, "_chart": chart_svg(data["per_minute"])}

    def queues_data(self, request: Request) -> dict[str, Any]:
        """Every queue with its state."""
        return {"queues": [views.queue_row(q) for q in self.inspector.queues()]}

    def queue_data(self, request: Request) -> dict[str, Any]:
        """One queue: its numbers and a page of its jobs."""
        name = self._queue(request.path_params["name"])
        info = next(q for q in self.inspector.queues() if q.name == name)
        cursor = request.query_params.get("after") or None
        jobs, following = self.inspector.queue_jobs(name, cursor, _limit(request))
        return {
            "queue": views.queue_row(info),
            "jobs": [j.as_dict() | {"preview": views.preview(j.args, j.kwargs)} for j in jobs],
            "next": following,
            "first_page": cursor is None,
        }

    def job_data(self, request: Request) -> dict[str, Any]:
        """One job: its record, history, result or error."""
        info = self.inspector.job_info(request.path_params["job_id"])
        return {"job": info, "_graph": views.job_graph(info, _base(request))}

    def batch_data(self, request: Request) -> dict[str, Any]:
        """A batch, a chord or a job's depends_on: its counts, callbacks and jobs, and their graph."""
        found = self.inspector.batch(request.path_params["batch_id"])
        return {"batch": found, "_graph": views.batch_graph(found, _base(request))}

    def workers_data(self, request: Request) -> dict[str, Any]:
        """The live workers."""
        return {"workers": [w.as_dict() for w in self.inspector.workers()]}

    def scheduled_data(self, request: Request) -> dict[str, Any]:
        """A page of delayed jobs and retries, soonest first."""
        page, limit = _page_number(request), _limit(request)
        found = self.inspector.scheduled(limit + 1, (page - 1) * limit)
        jobs = [j.as_dict() | {"preview": views.preview(j.args, j.kwargs)} for j in found[:limit]]
        return {"jobs": jobs, "page": page, "more": len(found) > limit}

    def dead_data(self, request: Request) -> dict[str, Any]:
        """A page of dead jobs, filtered by queue, task and error type."""
        params = request.query_params
        queue = self._queue(params["queue"]) if params.get("queue") else None
        task, error = params.get("task") or None, params.get("error") or None
        page, limit = _page_number(request), _limit(request)
        found = self.inspector.dead_jobs(queue, task=task, error=error, offset=(page - 1) * limit, limit=limit + 1)
        return {
            "jobs": [d.as_dict() | {"error_type": d.error_type} for d in found[:limit]],
            "page": page,
            "more": len(found) > limit,
            "filters": {"queue": queue or "", "task": task or "", "error": error or ""},
            "total": self.inspector.dead_count(queue),
            "queues": self.inspector.queue_names(),
        }

    def _extra_data(self, page: ExtraPage) -> Callable[[Request], dict[str, Any]]:
        def data(request: Request) -> dict[str, Any]:
            rows = page.rows()
            return {"rows": [r.as_dict() for r in rows], "_page": page, "_rows": rows}

        return data

    def search(self, request: Request) -> Response:
        """``/search?id=ID``: to the job's page, or a 404 saying where ids come from."""
        job_id = request.query_params.get("id", "").strip()
        if not job_id:
            raise BadRequest("give a job id: /search?id=ID")
        queue = self.inspector.find_queue(job_id)
        if queue is None:
            raise UnknownJob(f"no job with id {job_id!r} (never enqueued, or its record expired)")
        return RedirectResponse(f"{_base(request)}/jobs/{quote(job_id, safe='')}", status_code=303)

    async def stream(self, request: Request) -> Response:
        """``/api/stream``: the overview's JSON as server-sent events, every 2 s (``?limit=N`` ends after
        N events; a browser's EventSource reconnects by itself)."""
        limit = _int_param(request, "limit", 0, 0, 1_000_000)

        async def events() -> AsyncIterator[str]:
            sent = 0
            while not limit or sent < limit:
                data = await run_in_threadpool(views.stats_data, self.inspector)
                yield f"event: stats\ndata: {views.as_json(data)}\n\n"
                sent += 1
                if not limit or sent < limit:
                    await asyncio.sleep(STREAM_EVERY_S)

        return StreamingResponse(events(), media_type="text/event-stream")

    # -- actions -----------------------------------------------------------------------------------

    def _action(self, act: Callable[[Request, dict[str, str]], str]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            form = await _form(request)
            if self.read_only:
                raise Forbidden("this dashboard is read-only (--read-only): no action is allowed")
            given = form.get("csrf") or request.headers.get("x-csrf-token", "")
            if not self.guard.csrf_ok(request.scope.get("resq.identity", "anonymous"), given):
                raise Forbidden("missing or invalid CSRF token: reload the page and try again")
            message = await run_in_threadpool(act, request, form)
            if _wants_json(request):
                return _json({"ok": True, "message": message})
            back = _safe_back(form.get("back", ""))
            sep = "&" if "?" in back else "?"
            return RedirectResponse(f"{_base(request)}{back}{sep}{urlencode({'done': message})}", status_code=303)

        return endpoint

    def queue_action(self, request: Request, form: dict[str, str]) -> str:
        """pause, resume or clear (with ``confirm=yes``) a queue."""
        name, action = self._queue(request.path_params["name"]), request.path_params["action"]
        if action == "pause":
            self.inspector.pause_queue(name)
            return f"paused queue {name}"
        if action == "resume":
            self.inspector.resume_queue(name)
            return f"resumed queue {name}"
        if action == "clear":
            if form.get("confirm") != "yes":
                raise BadRequest(f"clearing queue {name!r} deletes its jobs: tick the confirmation box")
            return f"cleared queue {name}: {self.inspector.clear_queue(name)} jobs deleted"
        raise BadRequest(f"unknown queue action {action!r}: use pause, resume or clear")

    def job_action(self, request: Request, form: dict[str, str]) -> str:
        """retry (a dead job), run-now (a scheduled one), cancel, or delete a job."""
        job_id, action = request.path_params["job_id"], request.path_params["action"]
        if action == "retry":
            return f"requeued {job_id} on {self.inspector.retry_dead(job_id)}"
        if action == "run-now":
            return f"{job_id}: queued on {self.inspector.run_scheduled_now(job_id)}"
        if action == "delete":
            return f"{job_id}: {self.inspector.delete_job(job_id)}"
        if action == "cancel":
            status = self.inspector.cancel(job_id)
            if status == JobStatus.RUNNING:
                return f"cancel requested for {job_id}: it is running, its worker stops it"
            if status != JobStatus.CANCELLED:
                raise BadRequest(f"job {job_id} already {status}: nothing to cancel")
            return f"cancelled {job_id}"
        raise BadRequest(f"unknown job action {action!r}: use retry, run-now, cancel or delete")

    def worker_action(self, request: Request, form: dict[str, str]) -> str:
        """pause, resume or stop one worker (or supervisor), or ``all``."""
        target, action = request.path_params["target"], request.path_params["action"]
        if action not in CONTROL_COMMANDS:
            raise BadRequest(f"unknown worker action {action!r}: use {', '.join(CONTROL_COMMANDS)}")
        if target != "all" and target not in self.inspector.control_targets():
            raise UnknownJob(f"no live worker or supervisor {target!r}")
        receivers = self.inspector.control(action, "*" if target == "all" else target)
        return f"{action} sent to {'all workers' if target == 'all' else target} ({receivers} supervisors listening)"

    def dead_action(self, request: Request, form: dict[str, str]) -> str:
        """retry-all (of the filters given) or purge (of a queue, with ``confirm=yes``)."""
        action = request.path_params["action"]
        queue = self._queue(form["queue"]) if form.get("queue") else None
        if action == "retry-all":
            task, error = form.get("task") or None, form.get("error") or None
            return f"requeued {self.inspector.retry_all_dead(queue, task=task, error=error)} dead jobs"
        if action == "purge":
            if form.get("confirm") != "yes":
                raise BadRequest("purging deletes dead jobs for good: tick the confirmation box")
            return f"purged {self.inspector.purge_dead(queue=queue)} dead jobs"
        raise BadRequest(f"unknown dead-job action {action!r}: use retry-all or purge")

    def _extra_action(self, page: ExtraPage) -> Callable[[Request, dict[str, str]], str]:
        def act(request: Request, form: dict[str, str]) -> str:
            action = request.path_params["action"]
            if action not in page.actions:
                raise BadRequest(f"unknown {page.slug} action {action!r}: use {', '.join(page.actions)}")
            return page.actions[action](form.get("key", ""))

        return act

    def _queue(self, name: str) -> str:
        """``name`` if it is a known queue.

        Raises:
            BadRequest: an invalid or unknown queue name.
        """
        try:
            validate_name(name, "queue name")
        except ConfigError as exc:
            raise BadRequest(str(exc)) from exc
        if name not in self.inspector.queue_names():
            raise BadRequest(f"no queue named {name!r}")
        return name


# -- helpers ---------------------------------------------------------------------------------------


def _json(data: Any, status: int = 200) -> Response:
    return Response(views.as_json(data), status_code=status, media_type="application/json")


def _wants_json(request: Request) -> bool:
    path = request.url.path[len(request.scope.get("root_path", "")) :]
    return path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


def _base(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _back(request: Request) -> str:
    """This page's path and query (without the last action's message), for the forms' ``back`` field."""
    path = request.url.path[len(request.scope.get("root_path", "")) :] or "/"
    query = [(k, v) for k, v in request.query_params.multi_items() if k not in ("done", "token")]
    return path + (f"?{urlencode(query)}" if query else "")


def _safe_back(back: str) -> str:
    """Where an action returns to: the page it came from when that is a path of this dashboard, else
    the overview (never another site)."""
    if back.startswith("/") and not back.startswith("//") and "\\" not in back and "\n" not in back:
        return back
    return "/"


async def _form(request: Request) -> dict[str, str]:
    """The URL-encoded form of a POST (the last value of each field).

    Raises:
        BadRequest: a body over :data:`MAX_FORM_BYTES`.
    """
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise BadRequest(f"form too large (over {MAX_FORM_BYTES} bytes)")
    if not body:
        return {}
    if "json" in request.headers.get("content-type", ""):
        try:
            value = json.loads(body)
        except ValueError as exc:
            raise BadRequest("the body is not valid JSON") from exc
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in fields.items()}


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadRequest(f"invalid {name} {raw!r}: expected a whole number from {low} to {high}")
    return int(raw)


def _page_number(request: Request) -> int:
    return _int_param(request, "page", 1, 1, 1_000_000)


def _limit(request: Request) -> int:
    return _int_param(request, "limit", PAGE_SIZE, 1, MAX_LIMIT)


def _hint(status: int) -> str:
    if status == 404:
        return "Job ids are on the queue, dead and scheduled pages; a finished job's record expires after result_ttl."
    if status == 503:
        return "Check that redis-server is running and reachable from the dashboard."
    return ""
