"""The Flask app of ``docs/flask.md`` and ``tests/contrib/test_flask.py``: an application factory, a
route that enqueues, and a task that reads the Flask config (it runs inside the app context).

Workers run it as ``resq worker -A tests.apps.flaskapp:resq_app`` or ``flask --app tests.apps.flaskapp
resq worker``; the module-level app reads ``RESQ_REDIS_URL``, which the test fixtures set.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, current_app

from resq.contrib.flask import Resq as FlaskResq

jobs = FlaskResq()


@jobs.task(name="flaskapp.greet")
def greet(name: str) -> dict[str, Any]:
    """Runs in the worker, inside the Flask app's context: ``current_app`` is the app."""
    return {"greeting": f"{current_app.config['GREETING']}, {name}", "app": current_app.name}


def create_app(url: str | None = None) -> Flask:
    app = Flask("flaskapp")
    app.config.update(
        RESQ_URL=url or os.environ.get("RESQ_REDIS_URL"),
        RESQ_NAMESPACE="flaskapp",
        RESQ_RESULT_TTL=600,
        GREETING="Hello",
    )
    jobs.init_app(app)

    @app.post("/greet/<name>")
    def enqueue_greeting(name: str) -> tuple[dict[str, str], int]:
        job = greet.delay(name)
        return {"job": job.id}, 202

    return app


app = create_app()
#: The resq app, for ``resq worker -A tests.apps.flaskapp:resq_app``.
resq_app = jobs.app
