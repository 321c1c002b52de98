"""A realistic scene for the dashboard's screenshots: a few queues, jobs that ran, waiting, scheduled and dead
jobs with real errors (raised by real tasks, run by real workers), and two live workers, one busy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import resq
from resq import Job
from resq.ops import Inspector
from tests.apps import browser as browser_app
from tests.conftest import RunWorker
from tests.helpers import burst, wait_for

APP_REF = "tests.apps.browser:app"


@dataclass
class Scene:
    """What :func:`build` made: a dead job, a job that succeeded, one still queued, a running one."""

    dead: Job[Any]
    succeeded: Job[Any]
    queued: Job[Any]
    running: Job[Any]
    #: the callback of a chord (the CakeResque story of docs/workflows.md), run
    chord: Job[Any]


def build(run_worker: RunWorker) -> Scene:
    """Fill the bound database of ``tests.apps.browser`` and start two long-running workers."""
    app = browser_app.app
    inspector = Inspector(app)
    # Jobs that run and fail for real: ConnectionError, TimeoutError, FileNotFoundError dead jobs.
    browser_app.add.map((i, i * 2) for i in range(180))
    browser_app.comeback.map(range(1040, 1046))
    browser_app.send_mail.map(
        [("ana@example.com", "Your invoice #2291"), ("li@example.org", "Password reset"), ("sam@example.net", "Weekly")]
    )
    browser_app.resize.map(
        [(f"uploads/2024/06/IMG_{n}.jpg", 1024) for n in range(4410, 4430)] + [("uploads/avatar-88.missing.jpg", 256)]
    )
    succeeded = browser_app.add.delay(20, 22)
    dead = browser_app.comeback.delay(1047)
    steps = (browser_app.refresh_caches, browser_app.send_location_mails, browser_app.notify_friends)
    story = resq.chord(
        [*(step.s(42, "Lisbon") for step in steps), browser_app.recommend_friends.s(42, "Lisbon")],
        browser_app.record_processed.s("req-8f2c"),
    ).delay()
    burst(run_worker, APP_REF, "-q", "default,mail,images", "-c", "2")
    wait_for(lambda: dead.status() == "dead", message="the comeback job to be dead")
    wait_for(lambda: story.callback.status() == "succeeded", message="the chord's callback to run")
    # Waiting work: the reports queue has no worker; a paused images queue holds a few more.
    queued = browser_app.build_report.delay("revenue-2024-Q2", rows=12000)
    browser_app.build_report.map([("churn-weekly",), ("signups-daily",), ("inventory",)] * 8)
    # Scheduled jobs: retried later and delayed ones.
    for minutes in (5, 15, 45, 90, 240):
        browser_app.send_mail.enqueue_in(60 * minutes, "ops@example.com", f"Reminder in {minutes} min")
    browser_app.build_report.enqueue_in(3600 * 6, "quarterly-close", rows=50000)
    # Two live workers: one busy with a long job, one idle on the mail queue.
    running = browser_app.slow.delay(600)
    run_worker(APP_REF, "-q", "default,images", "-c", "2")
    run_worker(APP_REF, "-q", "mail", "--threads", "4")
    wait_for(lambda: running.status() == "running", message="the slow job to run")
    wait_for(lambda: len(inspector.workers()) >= 3, message="both workers' three processes live")
    return Scene(dead=dead, succeeded=succeeded, queued=queued, running=running, chord=story.callback)
