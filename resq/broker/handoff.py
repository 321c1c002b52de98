"""The hand-off: how a job's end reaches the joins it belongs to (``_workflow.lua``, ``docs/workflows.md``).

A job's keys share its queue's hash tag and a join's keys its workflow's, so no script touches both (on a
Redis Cluster they are often on different nodes). The script that ends a member writes a hand-off entry
into its queue's hand-off hash, in the same step as the end, and returns it; whoever ran that script then
applies it here: to each join (``settle``, in the join's slot), then to each callback the join decided
(``deferred``, in the callback's queue's slot), and deletes it last (``handed_off``). Every step is
idempotent, so an entry its writer did not finish (the process died) is applied again by the reaper
(:meth:`HandOff.sweep`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from resq.broker.connection import Part, text
from resq.clock import now_ms
from resq.codec import pack, unpack_bytes

__all__ = ["HANDOFF_MARK", "SWEEP_AFTER_MS", "HandOff", "HandedOff", "pack_joins", "unwrap"]

#: The first element of a script's reply that carries a hand-off entry (``resq_handed``).
HANDOFF_MARK = b"resq:handoff"

#: How old an entry is before the reaper applies it: its writer applies it at once, so one this old was
#: left by a process that died (or lost Redis) on the way.
SWEEP_AFTER_MS = 10_000

#: Entries read per round trip of a sweep.
SWEEP_BATCH = 200


class HandedOff(NamedTuple):
    """A hand-off entry to apply: the job's queue, its id and the entry as stored."""

    queue: str
    job_id: str
    entry: bytes


class Step(NamedTuple):
    """A chain's next step in another queue than the step before it, which the hand-off creates (``succeed``
    with ``later``): its queue, id, task, envelope, priority, flow and joins, as the chain made them."""

    queue: str
    job_id: str
    task: str
    envelope: bytes
    priority: int
    flow: bytes
    joins: bytes


class Decided(NamedTuple):
    """What a join decided for one of its callbacks: ``release``, ``cancel`` or ``fail`` it."""

    action: str
    job_id: str
    queue: str
    priority: int
    flow: bytes
    reason: str
    keep_ms: int


def unwrap(reply: Any) -> tuple[Any, bytes | None]:
    """A script's reply without its hand-off entry, and the entry (None: it wrote none)."""
    if isinstance(reply, list) and len(reply) == 3 and reply[0] == HANDOFF_MARK:
        return reply[1], bytes(reply[2])
    return reply, None


class HandOff(Part):
    """Registering members of joins, and applying the hand-off entries of members that ended."""

    def __init__(self, connection: Any, keys: Any, make_steps: Callable[[list[Step]], None]) -> None:
        super().__init__(connection, keys)
        #: creates chain steps handed off, each at most once (``Queues``: an enqueue with ``nx``)
        self._make_steps = make_steps
        #: entries applied whose deletion waits for the next round trip (``apply(delete_later=True)``)
        self._later: deque[HandedOff] = deque()

    def register(self, jobs: Iterable[tuple[str, bytes]]) -> dict[str, list[str]]:
        """Register jobs about to be enqueued (``(job id, packed joins)``) as pending members of their
        joins, before they exist: their end, whenever it comes, finds them counted. Returns the ids
        registered now, by join (to :meth:`unregister` those that were not created)."""
        by_join: dict[str, list[str]] = {}
        for job_id, joins in jobs:
            for join_id, _ in _joins(joins):
                by_join.setdefault(join_id, []).append(job_id)
        now = now_ms()
        return {
            join_id: [text(i) for i in self._join_script("join_add", join_id, [now, "add", *ids])]
            for join_id, ids in by_join.items()
        }

    def unregister(self, added: dict[str, list[str]], made: set[str]) -> None:
        """Drop the members :meth:`register` added whose jobs were not created after all (their ids
        were a live job's), then run what their joins decided without them."""
        now = now_ms()
        for join_id, ids in added.items():
            gone = [job_id for job_id in ids if job_id not in made]
            if gone:
                self.apply(self._run(self._join_script("join_add", join_id, [now, "drop", *gone])))

    def close(self, join_id: str) -> int | None:
        """Close an open join (``join_close``) and run what it decided; returns its member count (None:
        no such join)."""
        reply = self._join_script("join_close", join_id, [now_ms()])
        if not reply:
            return None
        total, decided = reply
        self.apply(self._run(decided))
        return int(total)

    def settle(self, join_id: str, job_id: str, status: str) -> None:
        """Count the end of ``job_id`` (a job that ended before it was attached to the join) into the
        join, and run what the join decided."""
        self.apply(self._run(self._join_script("settle", join_id, [now_ms(), job_id, status, -1, ""])))

    def apply(self, handed: Iterable[HandedOff], *, delete_later: bool = False) -> None:
        """Apply hand-off entries to their joins, run what the joins decided (which may end callbacks
        that belong to joins in turn: their entries are applied here too), and delete each entry last.
        Each of the three steps is one round trip for all the entries (a worker's batch of outcomes).

        Args:
            delete_later: leave the deletion of ``handed`` (not of the entries of callbacks) to the next
                round trip that takes :meth:`add_deletes` (a worker's next outcomes): one round trip less
                per batch. An entry whose deletion is lost with that round trip is applied again by the
                reaper, which does nothing twice.
        """
        todo, later = list(handed), delete_later
        while todo:
            entries = [(item, unpack_bytes(item.entry)) for item in todo]
            steps = [step for _, fields in entries if (step := _step(fields)) is not None]
            if steps:
                self._make_steps(steps)
            calls = [self._settle_call(j, args) for item, fields in entries for j, args in _settles(item, fields)]
            more = self._run([decided for reply in self._scripts(calls) for decided in reply])
            if later:
                self._later.extend(todo)
            else:
                self._scripts([self._delete_call(item) for item in todo])
            todo, later = more, False

    def add_deletes(self, pipe: Any) -> None:
        """Add to ``pipe`` the deletions :meth:`apply` left for later (their replies are 1 or 0)."""
        while self._later:
            self.connection.eval(pipe, *self._delete_call(self._later.popleft()))

    def delete_applied(self) -> None:
        """Delete now the entries whose deletion :meth:`apply` left for later (a worker about to wait
        for work: its next outcomes, which would carry them, may be far off)."""
        if self._later:
            calls = []
            while self._later:
                calls.append(self._delete_call(self._later.popleft()))
            self._scripts(calls)

    def _delete_call(self, item: HandedOff) -> tuple[str, list[str], list[Any]]:
        """The ``handed_off`` script's call for an entry applied."""
        return "handed_off", [self.keys.handoff(item.queue)], [item.job_id, item.entry]

    def _run(self, decided: Sequence[Any]) -> list[HandedOff]:
        """Run what joins decided (``settle``'s reply: release, cancel or fail callbacks), each in its
        queue's slot, in one round trip; returns the hand-off entries of the callbacks that ended without
        running (for :meth:`apply`)."""
        k, c = self.keys, self.connection
        channel, now, calls, refs = c.listened(k.events), now_ms(), [], []
        for d in (_decided(raw) for raw in decided):
            q, job_id = d.queue, d.job_id
            keys = [k.job(q, job_id), k.queue(q, d.priority), k.levels(q), k.dead(q), k.done(q, job_id), k.handoff(q)]
            calls.append(("deferred", keys, [d.action, job_id, d.priority, d.flow, d.reason, now, channel, d.keep_ms]))
            refs.append((q, job_id))
        more = []
        for (q, job_id), reply in zip(refs, self._scripts(calls), strict=True):
            _, entry = unwrap(reply)
            if entry is not None:
                more.append(HandedOff(q, job_id, entry))
        return more

    def sweep(self, queues: Iterable[str], older_than_ms: int | None = None) -> int:
        """Apply the entries of ``queues``' hand-off hashes older than ``older_than_ms`` (default
        ``SWEEP_AFTER_MS``): those whose writer died before it finished. Returns how many."""
        cutoff = now_ms() - (SWEEP_AFTER_MS if older_than_ms is None else older_than_ms)
        found = []
        for queue in queues:
            for job_id, entry in self._redis.hscan_iter(self.keys.handoff(queue), count=SWEEP_BATCH):
                if int(unpack_bytes(entry)[3]) <= cutoff:
                    found.append(HandedOff(queue, text(job_id), bytes(entry)))
        for first in range(0, len(found), SWEEP_BATCH):
            self.apply(found[first : first + SWEEP_BATCH])
        return len(found)

    def _settle_call(self, join_id: str, args: Sequence[Any]) -> tuple[str, list[str], list[Any]]:
        """The ``settle`` script's call for one join."""
        return "settle", self._join_keys(join_id), [join_id, now_ms(), *args]

    def _join_keys(self, join_id: str) -> list[str]:
        """The keys of join ``join_id``: its hash, its members and its results."""
        k = self.keys
        return [k.join(join_id), k.join_members(join_id), k.join_results(join_id)]

    def _scripts(self, calls: Sequence[tuple[str, list[str], list[Any]]]) -> list[Any]:
        """Run script calls ``(name, keys, args)`` in one round trip (on a Cluster, one per node); their
        replies in order."""
        if not calls:
            return []
        c = self.connection

        def build(pipe: Any) -> None:
            for name, keys, args in calls:
                c.eval(pipe, name, keys, args)

        return c.with_retry(lambda: c.fast_pipeline(build))

    def _join_script(self, name: str, join_id: str, args: Sequence[Any]) -> Any:
        """Run script ``name`` on the keys of join ``join_id`` (its hash, members and results)."""
        c, keys = self.connection, self._join_keys(join_id)
        return c.with_retry(lambda: c.script(name, keys, [join_id, *args]))


def _settles(item: HandedOff, fields: list[Any]) -> list[tuple[str, list[Any]]]:
    """The ``settle`` arguments an entry (``fields``: its decoded form) takes to each of its joins (after
    the join id and now): the member's end (none for a join only its next step is in), then the next
    step's id to register."""
    joins, status, result, _, next_id, next_joins, *_ = fields
    order: dict[str, tuple[int | None, list[str]]] = {}
    for join_id, place in _entries(joins):
        order[join_id] = (place, [])
    for join_id, _ in _entries(next_joins):
        order.setdefault(join_id, (None, []))[1].append(text(next_id))
    return [
        (join_id, ["", "", -1, "", *later] if index is None else [item.job_id, text(status), index, result, *later])
        for join_id, (index, later) in order.items()
    ]


def _step(fields: list[Any]) -> Step | None:
    """The chain step an entry (decoded) leaves to the hand-off to create (None: none)."""
    _, _, _, _, next_id, next_joins, *rest = fields
    if not rest or not rest[0]:
        return None
    queue, envelope, task, priority, flow = unpack_bytes(rest[0])
    joins = pack_joins(_entries(next_joins))
    return Step(text(queue), text(next_id), text(task), bytes(envelope), int(priority), bytes(flow or b""), joins)


def _joins(packed: bytes) -> list[tuple[str, int]]:
    """A member's packed ``joins`` field as ``(join id, index)`` pairs."""
    return _entries(unpack_bytes(packed)) if packed else []


def pack_joins(joins: Sequence[tuple[str, int]]) -> bytes:
    """The ``joins`` field of a member: each join's id and the member's index in it (-1: its result is
    not kept)."""
    return pack([[join_id, index] for join_id, index in joins]) if joins else b""


def _entries(raw: Any) -> list[tuple[str, int]]:
    """``[[join id, index], ...]`` as decoded (an empty Lua table packs as a map: no entries)."""
    if not isinstance(raw, list):
        return []
    return [(text(pair[0]), int(pair[1])) for pair in raw]


def _decided(raw: Sequence[Any]) -> Decided:
    """One element of ``settle``'s reply."""
    action, job_id, queue, priority, flow, reason, keep = raw
    return Decided(text(action), text(job_id), text(queue), int(priority), bytes(flow), text(reason), int(keep))
