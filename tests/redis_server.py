"""A real, throw-away ``redis-server`` process for tests (no fakes, no mocks)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = (
    "redis-server is not on PATH: the test suite needs a real Redis. "
    "Install it, e.g. `apt-get install redis-server` (or `brew install redis`)."
)


def find_free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _ping(port: int, timeout: float = 0.5) -> bool:
    """Raw RESP PING, so that readiness does not depend on the client library under test."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass(frozen=True)
class TlsFiles:
    """What ``redis-server`` needs to serve TLS: its certificate and key, and the CA that verifies clients'
    certificates (asked for only with ``auth_clients``)."""

    cert: Path
    key: Path
    ca: Path
    auth_clients: bool = False


class RedisServer:
    """One ``redis-server`` child process bound to 127.0.0.1 on its own port and directory."""

    START_TIMEOUT = 10.0

    def __init__(
        self,
        port: int | None = None,
        databases: int = 16,
        extra_args: tuple[str, ...] = (),
        tls: TlsFiles | None = None,
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(INSTALL_HINT)
        self.binary = binary
        self.databases = databases
        self.extra_args = tuple(extra_args)
        #: with ``tls``, a second port that speaks TLS only (the plain port stays, for readiness and admin)
        self.tls = tls
        self.tls_port: int | None = None
        self.dir = Path(tempfile.mkdtemp(prefix="resq-redis-"))
        self.log_path = self.dir / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False
        if port is not None:
            self.port = port
            self._start()
        else:
            # The free port may be grabbed between probing and binding: try a few.
            last: Exception | None = None
            for _ in range(5):
                self.port = find_free_port()
                self.tls_port = None
                try:
                    self._start()
                    break
                except RuntimeError as exc:
                    last = exc
            else:
                assert last is not None
                raise last

    # -- lifecycle -------------------------------------------------------------------------------------
    def _start(self) -> None:
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
            "--daemonize", "no",
            "--databases", str(self.databases),
            "--protected-mode", "no",
            *self._tls_args(),
            *self.extra_args,
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.paused = False
        self._wait_ready()

    def _tls_args(self) -> list[str]:
        if self.tls is None:
            return []
        if self.tls_port is None:
            self.tls_port = find_free_port()
        return [
            "--tls-port", str(self.tls_port),
            "--tls-cert-file", str(self.tls.cert),
            "--tls-key-file", str(self.tls.key),
            "--tls-ca-cert-file", str(self.tls.ca),
            "--tls-auth-clients", "yes" if self.tls.auth_clients else "no",
        ]  # fmt: skip

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"redis-server on port {self.port} exited with code {self.proc.returncode} "
                    f"before answering PING; log tail:\n{self.log_tail()}"
                )
            if _ping(self.port):
                return
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(
            f"redis-server on port {self.port} did not answer PING within {self.START_TIMEOUT:.0f} s; "
            f"log tail:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def tls_url(self, db: int = 0, host: str = "127.0.0.1") -> str:
        """``rediss://host:TLS_PORT/db`` (no query: the caller adds ``?ssl_ca_certs=…``)."""
        if self.tls_port is None:
            raise RuntimeError("this redis-server was started without tls=TlsFiles(...)")
        return f"rediss://{host}:{self.tls_port}/{db}"

    def stop(self) -> None:
        """Terminate gracefully (SIGTERM) and wait; resumes a paused server first."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.resume()
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.paused = False

    def kill(self) -> None:
        """SIGKILL: the server dies without any chance to clean up."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.paused = False

    def restart(self) -> None:
        """Start again on the same port (stopping the current process first if it still runs)."""
        self.stop()
        self._start()

    def pause(self) -> None:
        """SIGSTOP: the port still accepts connections, but nothing is answered."""
        if self.running and not self.paused:
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        if self.running and self.paused:
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGCONT)
        self.paused = False

    def cleanup(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.dir)

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        state = "paused" if self.paused else ("running" if self.running else "stopped")
        return f"<RedisServer 127.0.0.1:{self.port} {state}>"
