"""A control port for a running simulator: change fault rules and ask terminals for things.

One JSON object per line in, one JSON object per line back, on loopback only:

    {"op": "faults"}                                   → {"ok": true, "rules": [...]}
    {"op": "add", "action": "drop_response", "mti": "0200", "times": 1}
    {"op": "clear"}
    {"op": "processing", "tid": "10000001", "code": 3}  (header Y of its next answer)

Errors come back as ``{"ok": false, "error": "..."}``; the connection stays open.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from wuye.sims.acquirer.faults import FaultError
from wuye.sims.acquirer.host import Host


def command(host: Host, request: dict[str, Any]) -> dict[str, Any]:
    """Apply one control command to ``host``; return the answer (never raises)."""
    op = request.get("op")
    try:
        if op == "faults":
            return {"ok": True, "rules": host.faults.as_json()}
        if op == "add":
            options = {k: v for k, v in request.items() if k not in ("op", "action")}
            rule = host.faults.add(str(request.get("action", "")), **options)
            return {"ok": True, "rule": {"action": rule.action.value, "times": rule.times}}
        if op == "clear":
            host.faults.clear()
            return {"ok": True}
        if op == "processing":
            host.request_processing(str(request["tid"]), int(request["code"]))
            return {"ok": True}
    except (FaultError, KeyError, ValueError, TypeError) as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": False, "error": f"unknown op {op!r} (faults, add, clear, processing)"}


async def serve_control(host: Host, port: int, bind: str = "127.0.0.1") -> asyncio.Server:
    """Start the control port; return the server (close it to stop)."""

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                    if not isinstance(request, dict):
                        raise ValueError("a JSON object per line")
                    answer = command(host, request)
                except ValueError as exc:
                    answer = {"ok": False, "error": f"bad request: {exc}"}
                writer.write(json.dumps(answer, ensure_ascii=False).encode() + b"\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    return await asyncio.start_server(client, bind, port)
