"""The TCP side of the acquirer host: asyncio, one task per connection, requests in order.

:func:`start_acquirer` runs a host on loopback in a background thread and returns a handle
(``.port``, ``.host``, ``.faults``, ``.stop()``) for tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from types import TracebackType

from wuye.iso8583 import codec
from wuye.sims.acquirer.faults import FaultPlan
from wuye.sims.acquirer.host import Host, HostConfig, Registry, Reply
from wuye.sims.acquirer.store import Store

log = logging.getLogger("wuye.sims.acquirer")


class AcquirerServer:
    """Serve a :class:`Host` on TCP."""

    def __init__(self, host: Host, *, bind: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.bind = bind
        self.port = port
        self._server: asyncio.Server | None = None
        # With a registry the host may query Wuye's database, which Django forbids on a thread
        # running an event loop: then every request runs on one worker thread instead.
        self._executor = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="acquirer-host")
            if host.registry is not None
            else None
        )
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Start listening; return the port (the one the OS chose when given 0)."""
        self._server = await asyncio.start_server(self._client, self.bind, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def serve_forever(self) -> None:
        """Serve until cancelled."""
        assert self._server is not None, "start() first"
        async with self._server:
            await self._server.serve_forever()

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        for task in list(self._clients):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            await self._server.wait_closed()
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def _answer(self, data: bytes) -> Reply:
        if self._executor is None:
            return self.host.handle(data)
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self.host.handle, data
        )

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            while True:
                try:
                    data = await codec.read_frame(reader)
                except codec.ConnectionClosed:
                    break
                except codec.FormatError as exc:
                    peer = writer.get_extra_info("peername")
                    log.warning("acquirer: bad frame from %s: %s", peer, exc)
                    break
                reply = await self._answer(data)
                if reply.delay_s:
                    await asyncio.sleep(reply.delay_s)
                if reply.frame is not None:
                    codec.write_frame(writer, reply.frame)
                    await writer.drain()
                if reply.close:
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class AcquirerHandle:
    """A host running in a background thread; ``stop()`` (or ``with``) ends it."""

    def __init__(self, server: AcquirerServer, loop: asyncio.AbstractEventLoop,
                 thread: threading.Thread, stop_event: asyncio.Event) -> None:
        self.server = server
        self.host = server.host
        self.faults = server.host.faults
        self.port = server.port
        self._loop = loop
        self._thread = thread
        self._stop_event = stop_event

    def stop(self) -> None:
        """Stop serving, wait for the thread, close the store."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop_event.set)
            self._thread.join(timeout=10)
        self.host.store.close()

    def __enter__(self) -> AcquirerHandle:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def build_host(
    data_dir: Path,
    *,
    terminals: Iterable[tuple[str, str, bytes]] = (),
    config: HostConfig | None = None,
    faults: FaultPlan | None = None,
    clock: Callable[[], datetime] | None = None,
    registry: Registry | None = None,
    synchronous: str = "NORMAL",
) -> Host:
    """Open the host's store in ``data_dir`` and register ``terminals`` (TID, MID, TMK).

    Raise ``ValueError`` for a malformed terminal.
    """
    store = Store(Path(data_dir) / "acquirer.sqlite3", synchronous=synchronous)
    host = Host(store, config=config, faults=faults, clock=clock, registry=registry)
    for tid, mid, tmk in terminals:
        host.add_terminal(tid, mid, tmk)
    return host


def start_acquirer(
    data_dir: Path,
    *,
    terminals: Iterable[tuple[str, str, bytes]] = (),
    port: int = 0,
    bind: str = "127.0.0.1",
    config: HostConfig | None = None,
    faults: FaultPlan | None = None,
    clock: Callable[[], datetime] | None = None,
    registry: Registry | None = None,
) -> AcquirerHandle:
    """Run an acquirer host in a background thread; return its handle once it listens.

    Raise ``ValueError`` for a malformed terminal and ``OSError`` when the port is taken.
    """
    host = build_host(data_dir, terminals=terminals, config=config, faults=faults, clock=clock,
                      registry=registry)
    server = AcquirerServer(host, bind=bind, port=port)
    ready = threading.Event()
    box: dict[str, object] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        stop_event = asyncio.Event()
        box["loop"], box["stop"] = loop, stop_event

        async def main() -> None:
            try:
                await server.start()
            except OSError as exc:
                box["error"] = exc
                ready.set()
                return
            ready.set()
            await stop_event.wait()
            await server.close()

        try:
            loop.run_until_complete(main())
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="acquirer-sim", daemon=True)
    thread.start()
    ready.wait(timeout=30)
    if "error" in box:
        host.store.close()
        raise box["error"]  # type: ignore[misc]
    loop = box["loop"]
    stop_event = box["stop"]
    assert isinstance(loop, asyncio.AbstractEventLoop) and isinstance(stop_event, asyncio.Event)
    return AcquirerHandle(server, loop, thread, stop_event)
