"""The chaos suite (issue 11): faults against real ``redis-server`` and ``resq`` processes. Short in
``make test``; ``make chaos`` (``RESQ_CHAOS=full``) runs the issue's sizes. See docs/reliability.md."""
