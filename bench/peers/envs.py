#!/usr/bin/env python3
"""Create the peers' own environments on demand (``make peers-env``, the smoke test, ``run.py``).

- ``bench/.peers-venv``: huey, dramatiq, celery, rq (``requirements.txt``, exact pins);
- ``bench/.peers-venv-arq``: arq (``requirements-arq.txt``; arq 0.28 needs redis<6, celery 5.7 redis>=6.4);
- ``bench/peers/bullmq/node_modules``: BullMQ from npm (``npm ci`` from ``package-lock.json``).

Each is rebuilt only when its pin file changed (a stamp holds the file's hash). Stdlib only, so any
Python 3.11+ can run it. Exit status: 0 ready, 1 an install failed, 2 a registry could not be reached
(the smoke test then skips with that message).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

PEERS = Path(__file__).resolve().parent
BENCH = PEERS.parent
VENVS = {"peers": (BENCH / ".peers-venv", PEERS / "requirements.txt")}
VENVS["arq"] = (BENCH / ".peers-venv-arq", PEERS / "requirements-arq.txt")
NODE_DIR = PEERS / "bullmq"
REGISTRIES = {"PyPI": "https://pypi.org/simple/huey/", "npm": "https://registry.npmjs.org/bullmq"}


class RegistryUnreachable(RuntimeError):
    """A package registry did not answer: the environments cannot be built here."""


def digest(*paths: Path) -> str:
    """A hash of the files' contents (the stamp of an environment built from them)."""
    h = hashlib.sha256()
    for path in paths:
        h.update(path.read_bytes())
    return h.hexdigest()


def fresh(stamp: Path, want: str) -> bool:
    """Whether ``stamp`` records the hash ``want``."""
    return stamp.exists() and stamp.read_text().strip() == want


def check_registry(name: str) -> None:
    """Raise :class:`RegistryUnreachable` unless the registry ``name`` answers within 10 s."""
    try:
        with urllib.request.urlopen(REGISTRIES[name], timeout=10):
            return
    except urllib.error.HTTPError:
        return  # it answered
    except (urllib.error.URLError, OSError) as exc:
        raise RegistryUnreachable(f"the {name} registry is unreachable ({exc})") from exc


def run(cmd: list[str], cwd: Path | None = None) -> None:
    """Run an install step; on failure raise with its output."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")


def ensure_venv(venv: Path, requirements: Path) -> Path:
    """The venv's python, (re)built from ``requirements`` when they changed."""
    stamp, want = venv / ".installed", digest(requirements)
    python = venv / "bin" / "python"
    if fresh(stamp, want) and python.exists():
        return python
    check_registry("PyPI")
    shutil.rmtree(venv, ignore_errors=True)
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(requirements)])
    stamp.write_text(want + "\n")
    return python


def ensure_node() -> Path:
    """The BullMQ folder, with ``node_modules`` installed by ``npm ci`` when the lock file changed."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError("node and npm are needed for the BullMQ rows (apt-get install nodejs npm)")
    stamp = NODE_DIR / "node_modules" / ".installed"
    want = digest(NODE_DIR / "package.json", NODE_DIR / "package-lock.json")
    if not fresh(stamp, want):
        check_registry("npm")
        run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR)
        stamp.write_text(want + "\n")
    return NODE_DIR


def ensure_all() -> dict[str, Path]:
    """Every peer environment: ``{"peers": python, "arq": python, "node": bullmq folder}``."""
    found = {name: ensure_venv(venv, req) for name, (venv, req) in VENVS.items()}
    found["node"] = ensure_node()
    return found


def main() -> int:
    try:
        for name, path in ensure_all().items():
            print(f"{name}: {path}")
    except RegistryUnreachable as exc:
        print(f"peers' environments not built: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
