"""The resq demo: the "update my location" request of the CakeResque introduction, played with resq.

Run it from the repository root with ``make demo`` (or ``.venv/bin/python -m examples.demo``).

A request handler saves the user's new location (0.2 s) and hands the four slow, non-essential steps
(refresh caches 0.1 s, send mails 0.7 s, notify friends 3.7 s, recommend friends 2 s) to resq. A worker
started by the demo (``resq worker -A examples.demo_tasks:app -c 4``) runs them in the background; the
first attempt of "send mails" fails and is retried. The demo prints how long the request took, then
each job's outcome as it finishes, then stops the worker with SIGTERM.

Which Redis it uses:

1. ``RESQ_REDIS_URL`` when set;
2. else the Redis on 127.0.0.1:6379 when it answers PING;
3. else a private ``redis-server`` on a free port (temporary directory, no persistence), stopped and
   removed at the end. ``RESQ_DEMO_SPAWN=1`` forces this case.

On a shared Redis (1 and 2) the demo works in a fresh namespace ``resq-demo-<random>`` and deletes that
namespace's keys at the end; it never flushes a database.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import redis

from resq import Job, JobFailed, ResqError, ResultTimeout

ROOT = Path(__file__).resolve().parent.parent
LOCAL_URL = "redis://127.0.0.1:6379/0"
CONCURRENCY = 4
#: The seed story's durations, in seconds.
SAVE_S = 0.2
BACKGROUND = {"refresh caches": 0.1, "send mails": 0.7, "notify friends": 3.7, "recommend friends": 2.0}
INSTALL_HINT = """\
The demo needs a Redis server: {why}, and there is no redis-server on PATH
to start a private one. Install Redis and run the demo again:
  Debian/Ubuntu:  sudo apt-get install redis-server
  macOS:          brew install redis
"""


class DemoError(Exception):
    """Something the demo cannot go on without; the message says what."""


# -- Redis ------------------------------------------------------------------------------------------


def answers(url: str) -> bool:
    """Whether the Redis at ``url`` answers PING (a password-protected one without credentials does not)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1.0)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_private_redis(cleanup: contextlib.ExitStack) -> str:
    """Start a throw-away redis-server on a free port; ``cleanup`` stops it and removes its directory."""
    binary = shutil.which("redis-server")
    if binary is None:
        why = (
            "RESQ_DEMO_SPAWN=1 asks for a private one"
            if os.environ.get("RESQ_DEMO_SPAWN") == "1"
            else "RESQ_REDIS_URL is not set and nothing answers on 127.0.0.1:6379"
        )
        raise DemoError(INSTALL_HINT.format(why=why))
    workdir = Path(tempfile.mkdtemp(prefix="resq-demo-redis-"))
    cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
    port = free_port()
    with open(workdir / "redis.log", "wb") as log:
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
                "--daemonize",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    cleanup.callback(stop_process, proc, "redis-server")
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not answers(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = (workdir / "redis.log").read_text(errors="replace")[-2000:]
            raise DemoError(f"the private redis-server on port {port} did not start:\n{tail}")
        time.sleep(0.05)
    return url


def choose_redis(cleanup: contextlib.ExitStack) -> tuple[str, str]:
    """The Redis url to use and a sentence saying where it comes from."""
    if os.environ.get("RESQ_DEMO_SPAWN") != "1":
        given = os.environ.get("RESQ_REDIS_URL")
        if given:
            if not answers(given):
                raise DemoError(f"RESQ_REDIS_URL is set to {given!r}, but nothing answers PING there.")
            return given, "RESQ_REDIS_URL"
        if answers(LOCAL_URL):
            return LOCAL_URL, "the Redis answering on 127.0.0.1:6379"
    url = start_private_redis(cleanup)
    return url, "a private redis-server started for the demo (removed at the end)"


def delete_namespace(url: str, namespace: str) -> None:
    """Delete every key of ``namespace`` (``{ns}:…`` and ``{ns:queue}:…``), and nothing else."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=5.0)
    try:
        for pattern in ("{" + namespace + "}*", "{" + namespace + ":*"):
            batch: list[bytes] = []
            for key in client.scan_iter(match=pattern, count=500):
                batch.append(key)
                if len(batch) >= 500:
                    client.delete(*batch)
                    batch.clear()
            if batch:
                client.delete(*batch)
    except redis.RedisError as exc:
        print(
            f"could not delete the keys of namespace {namespace!r} ({exc}); they expire or can be deleted "
            f"with: redis-cli --scan --pattern '{{{namespace}*' | xargs redis-cli del",
            file=sys.stderr,
        )
    finally:
        client.close()


# -- the worker -------------------------------------------------------------------------------------


def stop_process(proc: subprocess.Popen[bytes], what: str, timeout: float = 15.0) -> int | None:
    """SIGTERM, wait up to ``timeout``, then SIGKILL its whole process group. Returns the exit status.

    Our children run in their own session (so that a Ctrl-C in the terminal reaches the demo alone, which
    then stops them in order): the group of ``proc`` holds ``proc`` and whatever it forked.
    """
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"\n  {what} did not stop within {timeout:g} s after SIGTERM: killing it", file=sys.stderr)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # anything of ours left in the group (a worker's children)
    proc.wait()
    return proc.returncode


def start_worker(cleanup: contextlib.ExitStack, log_path: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "resq",
        "worker",
        "-A",
        "examples.demo_tasks:app",
        "-c",
        str(CONCURRENCY),
        "-q",
        "default",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=os.environ.copy(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    cleanup.callback(stop_process, proc, "the worker")
    return proc


def wait_for_worker(tasks: ModuleType, proc: subprocess.Popen[bytes], log_path: Path, timeout: float = 15.0) -> None:
    """Wait until every child of the worker has registered its first heartbeat."""
    deadline = time.monotonic() + timeout
    while len(tasks.app.broker.workers.live()) < CONCURRENCY:
        if proc.poll() is not None or time.monotonic() > deadline:
            state = f"exited with status {proc.returncode}" if proc.poll() is not None else "is not ready"
            raise DemoError(f"the worker {state}; its log ({log_path}) ends with:\n{tail(log_path)}")
        time.sleep(0.05)


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# -- the story --------------------------------------------------------------------------------------


def update_location(tasks: ModuleType, user_id: int, city: str) -> dict[str, Job[Any]]:
    """The request handler: the one step the user waits for, then four jobs handed to resq."""
    time.sleep(SAVE_S)  # UPDATE users SET location = … WHERE id = …
    return {
        "refresh caches": tasks.refresh_caches.delay(user_id),
        "send mails": tasks.send_mails.delay(user_id, city),
        "notify friends": tasks.notify_friends.delay(user_id, city),
        "recommend friends": tasks.recommend_friends.delay(user_id, city),
    }


def wait_in_completion_order(jobs: dict[str, Job[Any]], timeout: float) -> queue.Queue[tuple[str, Any, float]]:
    """One thread per job blocks in ``job.result()``; each outcome is put on the queue as it arrives."""
    done: queue.Queue[tuple[str, Any, float]] = queue.Queue()

    def wait(label: str, job: Job[Any]) -> None:
        try:
            outcome: Any = job.result(timeout=timeout)
        except (ResqError, redis.RedisError) as exc:
            outcome = exc
        done.put((label, outcome, time.perf_counter()))

    for label, job in jobs.items():
        threading.Thread(target=wait, args=(label, job), name=f"wait-{label}", daemon=True).start()
    return done


def describe(label: str, job: Job[Any], outcome: Any) -> tuple[bool, str]:
    """A line about one finished job, and whether it succeeded."""
    if isinstance(outcome, ResultTimeout):
        return False, f"{label:<18} did not finish in time ({outcome})"
    if isinstance(outcome, JobFailed):
        return False, f"{label:<18} FAILED for good: {outcome.exc_type}: {outcome.exc_message}"
    if isinstance(outcome, Exception):
        return False, f"{label:<18} could not be waited for: {outcome!r}"
    info = job.info()
    attempts = info["attempts"]
    if attempts > 1 and info["error"]:
        error = info["error"]
        earlier = "attempt 1" if attempts == 2 else f"attempts 1-{attempts - 1}"
        kind = str(error.get("type", "?")).rsplit(".", 1)[-1]
        story = (
            f"{earlier} failed ({kind}: {error.get('message', '')}),\n{'':30}retried: "
            f"attempt {attempts} succeeded -> {outcome!r}"
        )
    else:
        story = f"succeeded on attempt {attempts} -> {outcome!r}"
    return True, f"{label:<18} {story}"


def main() -> int:
    try:
        return run()
    except KeyboardInterrupt:
        print("\ninterrupted: the worker was stopped and the demo's Redis keys removed", file=sys.stderr)
        return 130


def _terminated(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through the clean-up below


def run() -> int:
    signal.signal(signal.SIGTERM, _terminated)
    started = time.perf_counter()
    print('resq demo: the "update my location" request of the CakeResque introduction\n')
    with contextlib.ExitStack() as cleanup:
        try:
            url, source = choose_redis(cleanup)
        except DemoError as exc:
            print(exc, file=sys.stderr)
            return 1
        namespace = f"resq-demo-{secrets.token_hex(4)}"
        os.environ["RESQ_REDIS_URL"] = url  # read by the app below and by the worker process
        os.environ["RESQ_NAMESPACE"] = namespace
        cleanup.callback(delete_namespace, url, namespace)  # runs after the worker is stopped
        tasks = importlib.import_module("examples.demo_tasks")

        log_path = Path(tempfile.gettempdir()) / f"{namespace}-worker.log"
        worker = start_worker(cleanup, log_path)
        print(f"Redis:  {url}: {source}")
        print(f"        namespace {namespace!r} (its keys are deleted at the end)")
        print(
            f"Worker: resq worker -A examples.demo_tasks:app -c {CONCURRENCY} -q default "
            f"(pid {worker.pid}, log in {log_path})"
        )
        try:
            wait_for_worker(tasks, worker, log_path)
        except DemoError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"        {CONCURRENCY} worker processes ready\n")

        print("PUT /me/location  {user: 42, city: 'Lyon'}")
        begin = time.perf_counter()
        jobs = update_location(tasks, 42, "Lyon")
        took = time.perf_counter() - begin
        inline = SAVE_S + sum(BACKGROUND.values())
        steps = " + ".join(f"{s:g}" for s in (SAVE_S, *BACKGROUND.values()))
        print(f"  saved the location and handed {len(jobs)} jobs to resq: the request took {took:.2f} s")
        print(f"  done inline, the same request would take {inline:.1f} s ({steps})\n")

        print("Background jobs, as they finish (seconds after the request began):")
        done = wait_in_completion_order(jobs, timeout=20.0)
        ok = True
        last = begin
        for _ in jobs:
            label, outcome, at = done.get(timeout=30.0)
            good, line = describe(label, jobs[label], outcome)
            ok = ok and good
            last = max(last, at)
            print(f"  {at - begin:5.2f} s  {line}")
        print(f"\nThe user waited {took:.2f} s. The background work ran in parallel, out of the user's way,")
        print(f"and was done {last - begin:.2f} s after the request began.")

        print("\nStopping the worker with SIGTERM ...", end=" ", flush=True)
        stop_at = time.perf_counter()
        code = stop_process(worker, "the worker")
        print(f"stopped in {time.perf_counter() - stop_at:.1f} s (exit status {code}).")
        if code != 0:
            ok = False
            print(f"The worker's log ({log_path}) ends with:\n{tail(log_path)}", file=sys.stderr)
    print(f"Demo finished in {time.perf_counter() - started:.1f} s.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
