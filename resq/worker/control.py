"""Remote control of workers through Redis (``resq workers pause|resume|stop``), so it works across
machines and not only by signals.

A command is published on the control channel and also recorded as the last command for its target
(see :meth:`resq.broker.workers.Workers.send_command`), so a supervisor that missed the message
(reconnecting, or started in between) still applies it. Targets: ``*`` (every worker), a supervisor id
or a child id. The message format is :func:`resq.ops.records.control_message`.
"""

from __future__ import annotations

from collections.abc import Iterable

from resq.app import Resq
from resq.broker import Subscription
from resq.errors import BrokerUnavailable
from resq.log import get_logger
from resq.ops.records import read_command

__all__ = ["RemoteControl"]

log = get_logger("resq.worker")


class RemoteControl:
    """Reads the commands meant for one supervisor.

    Args:
        app: the app.
        started_ms: commands recorded before this time are ignored (they were for earlier workers).
    """

    def __init__(self, app: Resq, started_ms: int) -> None:
        self.app = app
        self._last_ms = started_ms
        self._subscription: Subscription | None = None

    def poll(self, ids: Iterable[str], durable: bool = False) -> list[str]:
        """Commands received since the last call (with ``durable``, the recorded state is read too).

        Args:
            ids: the supervisor's id and its children's ids (a command may name any of them).
        """
        targets = {"*", *ids}
        found: list[tuple[int, str]] = []
        try:
            found += self._from_messages(targets)
            if durable:
                found += self._from_state(targets)
        except BrokerUnavailable:
            return []
        commands = []
        for at_ms, cmd in sorted(found):
            if at_ms > self._last_ms:
                self._last_ms = at_ms
                commands.append(cmd)
        return commands

    def _from_messages(self, targets: set[str]) -> list[tuple[int, str]]:
        if self._subscription is None:
            self._subscription = self.app.broker.workers.subscribe_commands()
        found = []
        while (raw := self._subscription.message()) is not None:
            command = read_command(raw)
            if command is not None and command[2] in targets:
                found.append((command[0], command[1]))
        return found

    def _from_state(self, targets: set[str]) -> list[tuple[int, str]]:
        found = []
        for raw in self.app.broker.workers.command_state(sorted(targets)):
            command = read_command(raw)
            if command is not None:
                found.append((command[0], command[1]))
        return found
