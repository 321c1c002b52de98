"""Remote control of workers through Redis (``resq workers pause|resume|stop``), so it works across
machines and not only by signals.

A command is published on ``Keys.control`` and also recorded in the hash ``Keys.control_state``
(target -> msgpack ``{"cmd", "at_ms"}``), so a supervisor that missed the message (reconnecting, or
started in between) still applies it. Targets: ``*`` (every worker), a supervisor id or a child id.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgpack

from resq.app import Resq
from resq.broker import CONNECTION_ERRORS
from resq.log import get_logger

__all__ = ["COMMANDS", "RemoteControl"]

log = get_logger("resq.worker")

#: Commands a worker obeys.
COMMANDS = ("pause", "resume", "stop")


class RemoteControl:
    """Reads the commands meant for one supervisor.

    Args:
        app: the app.
        ids: the supervisor's id and its children's ids (a command may name any of them).
        started_ms: commands recorded before this time are ignored (they were for earlier workers).
    """

    def __init__(self, app: Resq, started_ms: int) -> None:
        self.app = app
        self._last_ms = started_ms
        self._pubsub: Any = None

    def poll(self, ids: Iterable[str], durable: bool = False) -> list[str]:
        """Commands received since the last call (with ``durable``, the recorded state is read too)."""
        targets = {"*", *ids}
        found: list[tuple[int, str]] = []
        try:
            found += self._from_messages(targets)
            if durable:
                found += self._from_state(targets)
        except CONNECTION_ERRORS:
            self._pubsub = None
            return []
        commands = []
        for at_ms, cmd in sorted(found):
            if at_ms > self._last_ms and cmd in COMMANDS:
                self._last_ms = at_ms
                commands.append(cmd)
        return commands

    def _from_messages(self, targets: set[str]) -> list[tuple[int, str]]:
        broker = self.app.broker
        if self._pubsub is None:
            self._pubsub = broker.subscribe(broker.keys.control)
        found = []
        while (message := self._pubsub.get_message(timeout=0)) is not None:
            command = _decode(message["data"])
            if command.get("target", "*") in targets:
                found.append((int(command.get("at_ms", 0)), str(command.get("cmd"))))
        return found

    def _from_state(self, targets: set[str]) -> list[tuple[int, str]]:
        found = []
        for raw in self.app.broker.control_state(sorted(targets)):
            if raw is not None:
                command = _decode(raw)
                found.append((int(command.get("at_ms", 0)), str(command.get("cmd"))))
        return found


def _decode(raw: Any) -> dict[str, Any]:
    try:
        value = msgpack.unpackb(raw, raw=False)
    except Exception:
        return {}
    return value if isinstance(value, dict) else {}
