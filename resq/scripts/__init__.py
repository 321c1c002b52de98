"""The Lua scripts behind every atomic transition, loaded once per client (EVALSHA).

Each ``<name>.lua`` file documents its ``KEYS``/``ARGV`` contract in a header comment; ``_lib.lua`` holds
helpers prepended to every script.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["load_source"]


def _read(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def load_source(name: str) -> str:
    """The source of script ``name`` with the shared helpers prepended."""
    return _read("_lib.lua") + "\n" + _read(f"{name}.lua")
