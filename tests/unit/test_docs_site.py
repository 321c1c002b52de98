"""The docs site (``mkdocs.yml``, built by ``make docs``): every page under docs/ is in the nav, and every
nav entry is a page that exists. ``mkdocs build --strict`` in ``make test`` checks the links and anchors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _nav_pages(node: Any) -> list[str]:
    """The page paths of a nav node: a string, a ``{title: node}`` mapping, or a list of nodes."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [page for value in node.values() for page in _nav_pages(value)]
    if isinstance(node, list):
        return [page for item in node for page in _nav_pages(item)]
    return []


def _config() -> dict[str, Any]:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert isinstance(config, dict)
    return config


def test_config_points_at_docs() -> None:
    config = _config()
    assert config["docs_dir"] == "docs"
    assert config["site_dir"] == "site"
    assert config["theme"]["name"] == "material"
    assert config["theme"]["font"] is False  # no external fonts: the build needs no network


def test_every_page_is_in_the_nav() -> None:
    nav = _nav_pages(_config()["nav"])
    pages = sorted(path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md"))
    missing = [page for page in pages if page not in nav]
    assert not missing, f"docs pages missing from mkdocs.yml's nav: {missing}"


def test_every_nav_entry_exists_once() -> None:
    nav = [page for page in _nav_pages(_config()["nav"]) if "://" not in page]
    assert not [page for page in nav if not (DOCS / page).is_file()]
    assert len(nav) == len(set(nav))
