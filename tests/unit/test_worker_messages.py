"""The typed messages a child sends its supervisor over their pipe."""

from __future__ import annotations

import pickle
from multiprocessing import connection

import pytest

from resq.outcomes import Delivery
from resq.worker.messages import JobBegan, JobEnded


def test_a_report_carries_queue_entry_id_and_thread_but_not_the_fields() -> None:
    delivery = Delivery("mail", "1-0", "abc", {b"id": b"abc"})
    began = JobBegan.of(delivery, 42)
    assert (began.queue, began.entry, began.job_id, began.thread) == ("mail", "1-0", "abc", 42)
    assert began.delivery == Delivery("mail", "1-0", "abc", {})
    assert JobEnded.of(delivery, 42) != began  # same job and thread, another kind of message


@pytest.mark.parametrize("kind", [JobBegan, JobEnded])
def test_messages_cross_a_pipe_as_themselves(kind: type[JobBegan] | type[JobEnded]) -> None:
    message = kind("default", "2-1", "xyz", 7)
    reader, writer = connection.Pipe(duplex=False)
    with reader, writer:
        writer.send(message)
        received = reader.recv()
    assert type(received) is kind and received == message
    assert pickle.loads(pickle.dumps(message)) == message
