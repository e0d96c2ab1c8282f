"""The TCP link to the acquirer: one request out, its response back, within a timeout.

The connection is kept open between exchanges (the contract allows several request/response
pairs on one connection) and dropped after any error or timeout, so a late answer to an
abandoned request can never be read as the answer to the next one.
"""

from __future__ import annotations

import socket

from wuye.posterm import wire


class NoResponse(Exception):
    """The acquirer did not answer in time, or the connection failed or closed."""


class Link:
    """A reusable connection to ``host:port``."""

    def __init__(self, host: str, port: int, *, timeout_s: float) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None

    def close(self) -> None:
        """Drop the connection (the next exchange opens a new one)."""
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def exchange(self, frame: bytes) -> bytes:
        """Send one framed request and return the framed response.

        Raises NoResponse on timeout, refusal, reset or a closed connection (after dropping it).
        """
        try:
            if self._sock is None:
                self._sock = socket.create_connection((self.host, self.port), self.timeout_s)
                self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock.settimeout(self.timeout_s)
            self._sock.sendall(frame)
            return wire.read_frame(self._sock)
        except (OSError, EOFError, ValueError) as exc:
            self.close()
            raise NoResponse(f"{self.host}:{self.port}: {exc.__class__.__name__}: {exc}") from exc
