"""Which job each thread of a child runs: a table in memory the child shares with its supervisor.

The supervisor maps the table before it forks the child. A thread of the child writes its row when it
begins an attempt and clears it when the attempt ends (a few bytes copied into shared memory: no
system call, no pickling, nothing for the supervisor to read per job); the supervisor reads the table
on its ticks, for hard time limits and the registry's ``current`` field.

A row is guarded by a sequence number that is odd while the row is being written, so a reader never
takes half a row for a whole one: it reads the number, the row, the number again, and keeps the row
only when both numbers are the same and even. One row has one writer (its thread).
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass

from resq.outcomes import Delivery

__all__ = ["ROW_BYTES", "Board", "Running"]

#: Bytes of one row: the header, then the queue name, the stream entry id and the job id.
ROW_BYTES = 2048
#: sequence number, monotonic start (s), length of queue, entry and job id in bytes, flags (``_CUT``, ``_FRONT``)
_HEAD = struct.Struct("<Qd3HB")
#: the job id was too long for the row; the entry is in the queue's front stream
_CUT, _FRONT = 1, 2
_SEQ = struct.Struct("<Q")
#: How often a reader tries a row that is being written before it leaves it for its next look.
_READ_TRIES = 3


@dataclass(frozen=True)
class Running:
    """One row: the job a thread runs, since when (``time.monotonic()``, the same clock in every process)."""

    delivery: Delivery
    began: float
    #: the row's sequence number: a new attempt on the same thread has a new one
    seq: int
    #: False when the job id was too long for the row (only the start of it is shown)
    whole: bool = True


class Board:
    """The table of one child: ``rows`` rows, one per fetching thread.

    Args:
        rows: how many threads may write (the child gives each fetching thread its own row).
    """

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self._mem = mmap.mmap(-1, rows * ROW_BYTES)  # anonymous and shared: a forked child writes the same pages
        self._seqs = [0] * rows

    def begin(self, row: int, delivery: Delivery, began: float) -> None:
        """Row ``row``'s thread began an attempt of ``delivery`` at ``began``."""
        queue, entry = delivery.queue.encode(), delivery.entry.encode()
        job_id = str(delivery.job_id).encode("utf-8", "replace")
        room = ROW_BYTES - _HEAD.size - len(queue) - len(entry)
        flags = (_CUT if len(job_id) > room else 0) | (_FRONT if delivery.front else 0) | delivery.priority << 4
        self._write(row, began, queue, entry, job_id[:room], flags)

    def end(self, row: int) -> None:
        """Row ``row``'s thread ended its attempt."""
        self._write(row, 0.0, b"", b"", b"")

    def _write(self, row: int, began: float, queue: bytes, entry: bytes, job_id: bytes, flags: int = 0) -> None:
        offset, seq = row * ROW_BYTES, self._seqs[row]
        _SEQ.pack_into(self._mem, offset, seq + 1)  # odd: being written
        _HEAD.pack_into(self._mem, offset, seq + 1, began, len(queue), len(entry), len(job_id), flags)
        start = offset + _HEAD.size
        self._mem[start : start + len(queue) + len(entry) + len(job_id)] = queue + entry + job_id
        self._seqs[row] = seq + 2
        _SEQ.pack_into(self._mem, offset, seq + 2)  # even: whole

    def read(self) -> dict[int, Running]:
        """Row -> what its thread runs, for each row that runs something (a row being written is left
        out: it shows at the next read)."""
        found = {}
        for row in range(self.rows):
            running = self._read_row(row)
            if running is not None:
                found[row] = running
        return found

    def _read_row(self, row: int) -> Running | None:
        offset = row * ROW_BYTES
        for _ in range(_READ_TRIES):
            seq, began, n_queue, n_entry, n_id, flags = _HEAD.unpack_from(self._mem, offset)
            if seq % 2:
                continue
            start = offset + _HEAD.size
            data = self._mem[start : start + n_queue + n_entry + n_id] if n_queue else b""
            if _SEQ.unpack_from(self._mem, offset)[0] != seq:
                continue
            if not data:
                return None
            queue, entry = data[:n_queue].decode(), data[n_queue : n_queue + n_entry].decode()
            job_id = data[n_queue + n_entry :].decode("utf-8", "replace")
            delivery = Delivery(queue, entry, job_id, {}, front=bool(flags & _FRONT), priority=flags >> 4)
            return Running(delivery, began, seq, whole=not flags & _CUT)
        return None

    def close(self) -> None:
        """Unmap the table."""
        self._mem.close()
