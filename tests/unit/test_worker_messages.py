"""The reports a consumer gives its child, and the board on which the child shows them to its supervisor."""

from __future__ import annotations

import os

from resq.outcomes import Delivery
from resq.worker.board import ROW_BYTES, Board
from resq.worker.messages import JobBegan, JobEnded


def test_a_report_carries_queue_entry_id_and_thread_but_not_the_fields() -> None:
    delivery = Delivery("mail", "1-0", "abc", {b"id": b"abc"})
    began = JobBegan.of(delivery, 42)
    assert (began.queue, began.entry, began.job_id, began.thread) == ("mail", "1-0", "abc", 42)
    assert began.delivery == Delivery("mail", "1-0", "abc", {})
    assert JobEnded.of(delivery, 42) != began  # same job and thread, another kind of message


def test_a_board_shows_what_each_row_runs_until_it_ends() -> None:
    board = Board(3)
    board.begin(0, Delivery("mail", "1-0", "abc", {}), 12.5)
    board.begin(2, Delivery("default", "2-7", "xyz", {}), 13.0)
    rows = board.read()
    assert sorted(rows) == [0, 2]
    assert (rows[0].delivery, rows[0].began, rows[0].whole) == (Delivery("mail", "1-0", "abc", {}), 12.5, True)
    board.end(0)
    assert sorted(board.read()) == [2]
    board.begin(0, Delivery("mail", "1-1", "def", {}), 14.0)
    again = board.read()[0]
    assert again.delivery.job_id == "def" and again.seq > rows[0].seq  # a new attempt on the row is a new row state


def test_a_forked_child_writes_what_its_parent_reads() -> None:
    board = Board(1)
    pid = os.fork()
    if pid == 0:  # the child
        board.begin(0, Delivery("q", "5-0", "from-child", {}), 1.0)
        os._exit(0)
    os.waitpid(pid, 0)
    assert board.read()[0].delivery.job_id == "from-child"


def test_an_id_too_long_for_its_row_is_cut_and_says_so() -> None:
    board = Board(1)
    board.begin(0, Delivery("q", "1-0", "x" * (2 * ROW_BYTES), {}), 1.0)
    row = board.read()[0]
    assert not row.whole and row.delivery.job_id.startswith("xxx") and len(row.delivery.job_id) < ROW_BYTES


def test_a_row_being_written_is_left_for_the_next_read() -> None:
    board = Board(1)
    board.begin(0, Delivery("q", "1-0", "abc", {}), 1.0)
    board._mem[0:8] = (board._seqs[0] + 1).to_bytes(8, "little")  # as a writer mid-row leaves it: odd
    assert board.read() == {}
