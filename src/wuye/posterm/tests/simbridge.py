"""Serve ``wuye.sims.acquirer``'s host (the real simulator's request cycle) on a loopback port.

Each connection is read frame by frame; ``Host.handle`` decides the answer, its delay and
whether to close, exactly as the simulator's own server does.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from pathlib import Path

from wuye.sims.acquirer.host import Host
from wuye.sims.acquirer.store import Store


def _read(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        bridge: SimBridge = self.server.bridge  # type: ignore[attr-defined]
        sock: socket.socket = self.request
        while True:
            try:
                prefix = _read(sock, 2)
                data = prefix + _read(sock, int.from_bytes(prefix, "big"))
            except (EOFError, OSError):
                return
            with bridge.lock:
                reply = bridge.host.handle(data)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            if reply.frame is not None:
                sock.sendall(reply.frame)
            if reply.close:
                return


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class SimBridge:
    """``with SimBridge(db_path) as sim``: the simulator's host on ``sim.port``."""

    def __init__(self, db_path: Path) -> None:
        self.store = Store(db_path)
        self.host = Host(self.store)
        self.lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.bridge = self  # type: ignore[attr-defined]
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> SimBridge:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.store.close()
