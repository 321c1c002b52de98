"""A TCP proxy between resq and a real redis-server, for faults no root is needed for: cut the network
(every connection dropped, new ones refused until restored), or lose the next reply (Redis ran the
command, its answer never arrives and the connection drops)."""

from __future__ import annotations

import contextlib
import select
import socket
import threading

from tests.redis_server import find_free_port

__all__ = ["Proxy"]


class Proxy:
    """Listens on a free port of 127.0.0.1 and forwards to ``upstream_port``; ``close()`` ends it."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = find_free_port()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._cut = False
        self._lose_reply = False
        self._closed = False
        #: how many replies were lost on purpose so far
        self.lost = 0
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def cut(self) -> None:
        """Drop every connection and refuse new ones until :meth:`restore`."""
        with self._lock:
            self._cut = True
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            _close(*pair)

    def restore(self) -> None:
        """Accept and forward connections again."""
        with self._lock:
            self._cut = False

    def lose_next_reply(self) -> None:
        """The next bytes Redis sends back are thrown away and their connection dropped."""
        with self._lock:
            self._lose_reply = True

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._server.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                refused = self._cut
            if refused:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), name="proxy-pump", daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([client, upstream], [], [], 0.5)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is upstream:
                        with self._lock:
                            lose, self._lose_reply = self._lose_reply, False
                        if lose:
                            self.lost += 1
                            return  # the reply is lost with the connection
                        client.sendall(data)
                    else:
                        upstream.sendall(data)
        except OSError:
            return
        finally:
            _close(client, upstream)
            with self._lock, contextlib.suppress(ValueError):
                self._pairs.remove((client, upstream))


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()
