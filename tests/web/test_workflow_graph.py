"""The dashboard shows the graph of a workflow: a job's page its parents and children (each a link to its
page), a batch's page (``/batches/ID``, a chord's or a depends_on's too) its counts, callbacks and jobs;
the JSON twins carry the same, without the drawing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from types import ModuleType

import pytest

import resq
from resq.testing import drain
from tests.apps import workflowapp as wf
from tests.web.conftest import TestClient

QUEUES = ["default", "db"]


@pytest.fixture
def flows(redis_url: str, web: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """``tests.apps.workflowapp`` on the dashboard's database and namespace."""
    monkeypatch.setenv("RESQ_REDIS_URL", redis_url)  # its tasks count their runs there
    wf.app.reconfigure(url=redis_url)
    wf.app.broker.queues.ensure_groups(QUEUES)
    yield wf
    wf.app.broker.close()


def test_a_jobs_page_draws_its_parents_and_children(flows: ModuleType, client: TestClient) -> None:
    a, b = wf.square.delay(2), wf.square.delay(3)
    child = wf.mark.apply_async(("c",), depends_on=[a, b])
    page = client.get(f"/jobs/{child.id}").text
    graph = re.search(r'<svg class="flow".*?</svg>', page, re.S)
    assert graph is not None
    assert f'href="/jobs/{a.id}"' in graph.group(0) and f'href="/jobs/{b.id}"' in graph.group(0)
    assert graph.group(0).count('class="flow-edge"') == 2  # each parent to the job
    assert 'class="flow-node node-deferred"' in graph.group(0)
    assert f'href="/batches/{child.id}"' in page  # the depends_on's own page
    shown = client.get(f"/api/jobs/{child.id}").json()
    assert "_graph" not in shown and [p["id"] for p in shown["job"]["parents"]] == [a.id, b.id]
    assert 'class="flow"' not in client.get(f"/jobs/{wf.square.delay(9).id}").text  # no workflow: no graph


def test_a_batch_page_shows_its_counts_callbacks_and_jobs(flows: ModuleType, client: TestClient) -> None:
    handle = resq.chord((wf.square.s(n) for n in range(15)), wf.collect.s("web")).delay()
    assert drain(wf.app, QUEUES) == 16
    page = client.get(f"/batches/{handle.id}").text
    assert '<span class="kind">chord</span>' in page and "status-complete" in page
    graph = re.search(r'<svg class="flow".*?</svg>', page, re.S)
    assert graph is not None and "+3 more" in graph.group(0)  # 12 of 15 drawn
    assert graph.group(0).count('class="flow-edge"') == 13  # each drawn member (and the note) to the callback
    assert f'href="/jobs/{handle.callback.id}"' in page
    found = client.get(f"/api/batches/{handle.id}").json()["batch"]
    assert (found["total"], found["succeeded"], found["callbacks"]["success"]["status"]) == (15, 15, "succeeded")
    missing = client.get("/batches/nope")
    assert missing.status_code == 404 and "no batch, chord or depends_on" in missing.text
