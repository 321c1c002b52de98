"""The peer benchmark's smoke run (``bench/peers/run.py --smoke``), so the harness cannot rot.

It builds the peers' own environments on demand (``bench/peers/envs.py``: two venvs from PyPI, BullMQ from
npm), skipping only when a registry cannot be reached, then runs every system on a few jobs. It asserts
only that every system drained all its jobs and that the report has a row per system: no timing
assertion (the figures of a smoke run mean nothing).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "bench" / "peers"
SYSTEM_KEYS = {"loop", "huey", "dramatiq", "celery", "rq", "arq", "bullmq", "resq"}

pytestmark = [pytest.mark.bench_smoke, pytest.mark.timeout(900)]


def systems() -> list[object]:
    """``bench/peers/systems.py``'s SYSTEMS (loaded by path: bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("peers_systems", PEERS / "systems.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return list(module.SYSTEMS)


def ensure_envs() -> None:
    """Build the peers' environments, or skip if PyPI or npm is unreachable."""
    proc = subprocess.run(
        [sys.executable, str(PEERS / "envs.py")], cwd=ROOT, capture_output=True, text=True, timeout=840, check=False
    )
    if proc.returncode == 2:
        pytest.skip(f"peer benchmark smoke run skipped: {proc.stderr.strip()}")
    assert proc.returncode == 0, f"building the peers' environments failed:\n{proc.stdout}\n{proc.stderr}"


def test_peer_benchmark_smoke_run_drains_every_system(tmp_path: Path) -> None:
    ensure_envs()
    raw = tmp_path / "peers.json"
    proc = subprocess.run(
        [sys.executable, str(PEERS / "run.py"), "--smoke", "--json", str(raw)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, f"smoke run failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    data = json.loads(raw.read_text())
    expected = systems()
    assert {s.key for s in expected} == SYSTEM_KEYS  # type: ignore[attr-defined]
    assert set(data["results"]) == {s.label for s in expected}  # type: ignore[attr-defined]
    for label, figures in data["results"].items():
        assert figures["drained"] >= figures["expected"], f"{label} drained {figures['drained']}"
        assert figures["distinct"] == figures["expected"], f"{label} ran {figures['distinct']} distinct jobs"
    rows = [line for line in data["report"].splitlines() if line.startswith("| ")]
    for system in expected:
        label = system.label  # type: ignore[attr-defined]
        assert any(row.startswith((f"| {label}", f"| **{label}")) for row in rows), f"no row for {label}"
    report = tmp_path / "peers.md"
    report.write_text(data["report"])
    drawn = subprocess.run(
        [sys.executable, str(PEERS / "chart.py"), str(report)], capture_output=True, text=True, check=False
    )
    assert drawn.returncode == 0, drawn.stderr
    chart = (tmp_path / "peers.svg").read_text()
    assert chart.startswith("<svg") and all(s.label in chart for s in expected)  # type: ignore[attr-defined]
