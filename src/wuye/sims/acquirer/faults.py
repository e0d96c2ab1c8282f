"""Fault injection: rules that make the host misbehave on chosen requests.

A rule names an action and what it matches (request MTI, processing code, 60.1 type code, card
number, TID) and how many times it fires (``times``; unlimited when ``None``). Rules come from
a JSON file (a list of objects with these keys), the command line
(``--fault drop_response:mti=0200,pan=6222021000000000017,times=1``) or, in-process, from
``handle.faults.add(...)``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

__all__ = ["Action", "FaultError", "FaultPlan", "Rule", "parse_rule"]


class Action(StrEnum):
    """What a rule makes the host do."""

    DELAY = "delay"  # answer after ``delay_ms``
    DROP_RESPONSE = "drop_response"  # act on the request, send nothing
    DROP_REQUEST = "drop_request"  # neither act nor answer; keep the connection
    CLOSE = "close"  # close the connection without acting
    CORRUPT_MAC = "corrupt_mac"  # act, answer with a wrong field 64


class FaultError(ValueError):
    """A fault rule that cannot be understood."""


@dataclass
class Rule:
    """One fault: an action and the requests it applies to (empty matcher = any)."""

    action: Action
    mti: str = ""
    processing_code: str = ""
    txn_type: str = ""  # 60.1
    pan: str = ""
    tid: str = ""
    delay_ms: int = 0
    times: int | None = None
    fired: int = field(default=0, compare=False)

    def matches(self, request: dict[str, Any]) -> bool:
        """Tell whether this rule applies to a decoded request."""
        if self.times is not None and self.fired >= self.times:
            return False
        pan = str(request.get("2") or str(request.get("35", "")).split("=")[0])
        checks = (
            (self.mti, request.get("t")),
            (self.processing_code, request.get("3")),
            (self.txn_type, str(request.get("60", ""))[:2]),
            (self.pan, pan),
            (self.tid, request.get("41")),
        )
        return all(not want or want == got for want, got in checks)


def parse_rule(text: str) -> Rule:
    """Parse ``action[:key=value,...]``; raise ``FaultError`` naming the bad part."""
    action_text, _, rest = text.partition(":")
    options: dict[str, Any] = {}
    for part in filter(None, rest.split(",")):
        key, sep, value = part.partition("=")
        if not sep:
            raise FaultError(f"fault {text!r}: {part!r} is not key=value")
        options[key.strip()] = value.strip()
    return _rule(action_text.strip(), options, where=repr(text))


def _rule(action: str, options: dict[str, Any], *, where: str) -> Rule:
    try:
        act = Action(action)
    except ValueError:
        allowed = ", ".join(a.value for a in Action)
        raise FaultError(f"fault {where}: unknown action {action!r} (one of {allowed})") from None
    known = {"mti", "processing_code", "txn_type", "pan", "tid", "delay_ms", "ms", "times"}
    unknown = set(options) - known
    if unknown:
        raise FaultError(f"fault {where}: unknown keys {sorted(unknown)}")
    try:
        delay_ms = int(options.pop("ms", options.pop("delay_ms", 0)))
        times = options.pop("times", None)
        times_n = None if times in (None, "") else int(times)
    except (TypeError, ValueError):
        raise FaultError(f"fault {where}: delay_ms and times must be integers") from None
    if delay_ms < 0 or (times_n is not None and times_n < 0):
        raise FaultError(f"fault {where}: delay_ms and times must not be negative")
    if act is Action.DELAY and delay_ms == 0:
        raise FaultError(f"fault {where}: delay needs ms=...")
    text = {k: str(v) for k, v in options.items()}
    return Rule(action=act, delay_ms=delay_ms, times=times_n, mti=text.get("mti", ""),
                processing_code=text.get("processing_code", ""),
                txn_type=text.get("txn_type", ""), pan=text.get("pan", ""),
                tid=text.get("tid", ""))


class FaultPlan:
    """The rules in force; safe to change from another thread while the host runs."""

    def __init__(self, rules: list[Rule] | None = None) -> None:
        self._lock = threading.Lock()
        self._rules: list[Rule] = list(rules or [])

    def add(self, action: Action | str, **match: Any) -> Rule:
        """Add a rule (keywords as in :class:`Rule`); return it. Raise ``FaultError``."""
        rule = _rule(str(action), dict(match), where=str(action))
        with self._lock:
            self._rules.append(rule)
        return rule

    def add_rule(self, rule: Rule) -> Rule:
        """Add a parsed rule; return it."""
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[Rule]:
        """Return a copy of the rules."""
        with self._lock:
            return list(self._rules)

    def load(self, path: Path) -> None:
        """Add the rules of a JSON file (a list of objects); raise ``FaultError``."""
        try:
            items = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise FaultError(f"fault file {path}: {exc}") from None
        if not isinstance(items, list):
            raise FaultError(f"fault file {path}: expected a JSON list of rules")
        for n, item in enumerate(items, 1):
            if not isinstance(item, dict) or "action" not in item:
                raise FaultError(f"fault file {path}, rule {n}: an object with 'action'")
            options = {k: v for k, v in item.items() if k != "action"}
            rule = _rule(str(item["action"]), options, where=f"{path} rule {n}")
            with self._lock:
                self._rules.append(rule)

    def pick(self, request: dict[str, Any]) -> list[Rule]:
        """Return the rules that fire for ``request`` (one per action), counting them."""
        chosen: dict[Action, Rule] = {}
        with self._lock:
            for rule in self._rules:
                if rule.action not in chosen and rule.matches(request):
                    rule.fired += 1
                    chosen[rule.action] = rule
        return list(chosen.values())

    def as_json(self) -> list[dict[str, Any]]:
        """Return the rules as JSON-ready dicts."""
        return [asdict(r) for r in self.rules()]
