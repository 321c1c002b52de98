"""A redis-server of the benchmark's own on a free port (never the machine's 6379), removed at the end."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time

import redis


def free_port() -> int:
    """An unused TCP port on 127.0.0.1 (never 6379, the machine's shared Redis)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    assert port != 6379
    return port


class PrivateRedis:
    """A private redis-server, without persistence; ``close()`` stops it and removes its folder."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="resq-bench-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                return
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("private redis-server did not start") from None
                time.sleep(0.05)

    def version(self) -> str:
        """The server's version."""
        return str(self.client.info("server")["redis_version"])

    def counters(self) -> tuple[int, int]:
        """(commands processed, client read events processed: about one per round trip)."""
        stats = self.client.info("stats")
        return int(stats["total_commands_processed"]), int(stats["total_reads_processed"])

    def close(self) -> None:
        """Stop the server and remove its folder."""
        try:
            self.client.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            shutil.rmtree(self.dir, ignore_errors=True)
