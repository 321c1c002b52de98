"""Pages other packages add to the dashboard, through the ``resq.dashboard`` entry-point group.

An entry point names a callable ``(app) -> ExtraPage`` (``resq_scheduler`` adds the Cron page this way:
``cron = "resq_scheduler.web:cron_page"``). The dashboard renders an extra page as a table with a button
per action and row, serves its rows as JSON under ``/api/<slug>``, and runs its actions on POST (with the
same credentials, CSRF check and read-only rule as its own pages).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from resq.app import Resq
from resq.log import get_logger

__all__ = ["ENTRY_POINT_GROUP", "ExtraPage", "ExtraRow", "load_pages"]

#: The entry-point group the dashboard reads its extra pages from.
ENTRY_POINT_GROUP = "resq.dashboard"

log = get_logger("resq.web")


@dataclass(frozen=True)
class ExtraRow:
    """One row of an extra page."""

    #: what the row's actions act on (an entry's name)
    key: str
    #: column name -> text
    cells: Mapping[str, str]
    #: the actions this row offers (names of :attr:`ExtraPage.actions`)
    actions: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"key": self.key, **self.cells, "actions": list(self.actions)}


@dataclass(frozen=True)
class ExtraPage:
    """A page of another package: a table of rows and the actions on them.

    Args:
        slug: the page's path (``cron`` serves ``/cron`` and ``/api/cron``).
        title: its name in the navigation.
        columns: the columns shown, in order.
        rows: reads the rows (called on each page load).
        actions: action name -> ``run(key) -> message``; raising a ``ResqError`` refuses it.
        labels: action name -> button text (default: the name).
        note: a line shown above the table.
    """

    slug: str
    title: str
    columns: tuple[str, ...]
    rows: Callable[[], list[ExtraRow]]
    actions: Mapping[str, Callable[[str], str]] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    note: str = ""


def load_pages(app: Resq, reserved: set[str]) -> list[ExtraPage]:
    """The extra pages installed packages offer for ``app``; one that fails to load is logged and left out
    (a broken extension must not take the dashboard down), as is one whose slug is taken."""
    pages: list[ExtraPage] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            page = ep.load()(app)
        except Exception as exc:
            log.warning("dashboard_page_failed", page=ep.name, error=f"{type(exc).__name__}: {exc}")
            continue
        if not isinstance(page, ExtraPage) or page.slug in reserved or not page.slug.isidentifier():
            log.warning("dashboard_page_refused", page=ep.name, reason="not an ExtraPage, or its slug is taken")
            continue
        reserved.add(page.slug)
        pages.append(page)
    return pages
