"""The tasks of the demo (``examples/demo.py``): the slow parts of an "update my location" request.

The durations are the ones of the CakeResque introduction: refresh caches 0.1 s, send mails 0.7 s,
notify friends 3.7 s, recommend friends 2 s. Sending mails fails on its first attempt (a flaky SMTP
server) and succeeds when retried.

The worker imports this module: ``resq worker -A examples.demo_tasks:app``. The app reads its Redis
url from ``RESQ_REDIS_URL`` and its namespace from ``RESQ_NAMESPACE``, which the demo sets for both
itself and the worker it starts.
"""

from __future__ import annotations

import os
import time

from resq import Resq, current_job

app = Resq(namespace=os.environ.get("RESQ_NAMESPACE", "resq"))


class SmtpUnavailable(Exception):
    """The (simulated) mail server refused the connection."""


@app.task(name="demo.refresh_caches")
def refresh_caches(user_id: int) -> str:
    time.sleep(0.1)
    return f"3 cache entries of user {user_id} refreshed"


@app.task(name="demo.send_mails", retries=2, backoff=0.5)
def send_mails(user_id: int, city: str) -> str:
    time.sleep(0.7)
    job = current_job()
    if job is not None and job.attempt == 1:
        raise SmtpUnavailable("smtp.example.com:25 refused the connection")
    return f"2 mails about {city} sent to user {user_id}"


@app.task(name="demo.notify_friends")
def notify_friends(user_id: int, city: str) -> str:
    time.sleep(3.7)
    return f"148 friends of user {user_id} notified of the move to {city}"


@app.task(name="demo.recommend_friends")
def recommend_friends(user_id: int, city: str) -> list[str]:
    time.sleep(2.0)
    return ["ada", "grace", "linus"]
