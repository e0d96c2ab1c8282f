"""Writes of terminal management: registration, keys, tokens, heartbeats, parameters,
releases, the push queue and the terminal's result and settlement reports.

Result reports are recorded exactly once per ``report_id`` (a unique column; the first answer
is stored and given again); what they mean for the books is ``wuye.channels.card.services``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from wuye.accounts.models import Role
from wuye.accounts.selectors import require_role
from wuye.core.services import audit_record
from wuye.estates.models import Community
from wuye.merchants.models import Channel, Merchant
from wuye.terminals import keys
from wuye.terminals.models import (
    Heartbeat,
    Release,
    Settlement,
    Terminal,
    TerminalParams,
    TerminalReport,
    TerminalRequest,
)

log = logging.getLogger(__name__)

ENTRY_MODES = ("stripe", "chip", "tap")
RESULT_KINDS = ("purchase", "void", "refund", "balance")
KEY_EXPORT_ROLES: set[str] = {Role.ADMIN, Role.FINANCE}
MANAGE_ROLES: set[str] = {Role.ADMIN}


class TerminalError(ValueError):
    """A terminal-management request was refused; the message says what and where."""


class TerminalAuthError(TerminalError):
    """Unknown TID or wrong token (HTTP 401)."""


class TerminalDisabled(TerminalError):
    """The terminal is disabled in terminal management (HTTP 403)."""


class RequestClosed(TerminalError):
    """The request was cancelled, expired or already completed (HTTP 409)."""


class BadReport(TerminalError):
    """A result or settlement report is malformed (HTTP 400); nothing was recorded."""


# --- registration, tokens and keys -----------------------------------------------------------


def _token_hash(token: str) -> str:
    # A 256-bit random token needs no slow password hash: SHA-256 cannot be inverted.
    return hashlib.sha256(token.encode()).hexdigest()


def _clean_digits(name: str, value: str, length: int) -> str:
    value = (value or "").strip()
    if not re.fullmatch(rf"\d{{{length}}}", value):
        raise TerminalError(
            _("%(field)s: 须为%(n)s位数字, 收到 %(value)r")
            % {"field": name, "n": length, "value": value}
        )
    return value


def terminal_register(
    *,
    community: Community,
    counter_name: str,
    serial_no: str,
    tid: str,
    mid: str,
    by: Any,
    now: datetime,
    model: str = "",
    kind: str = Terminal.Kind.COUNTERTOP,
    location: str = "",
    ip_address: str | None = None,
    network_cert_no: str = "",
    tmk: bytes | None = None,
) -> tuple[Terminal, str]:
    """Register a terminal at ``counter_name`` of ``community``; return it and its API token.

    A TMK is generated (``tmk`` only to register a device that already holds a known key, like
    the demo's published test key) and stored encrypted; the token is shown once and stored
    hashed. The merchant is the company's bank-card acquirer merchant with ``mid`` if there is
    one. Raise AccessDenied unless ``by`` is an administrator there, TerminalError for bad or
    duplicate input (nothing is written then).
    """
    require_role(by, MANAGE_ROLES, company_id=community.company_id, community_id=community.pk)
    tid = _clean_digits("tid", tid, 8)
    mid = _clean_digits("mid", mid, 15)
    serial_no = (serial_no or "").strip()
    counter_name = (counter_name or "").strip()
    if not serial_no or len(serial_no) > 40:
        raise TerminalError(_("serial_no: 必填, 不超过40个字符"))
    if not counter_name or len(counter_name) > 40:
        raise TerminalError(_("counter_name: 必填, 不超过40个字符"))
    if kind not in Terminal.Kind.values:
        raise TerminalError(_("kind: 须为 countertop 或 handheld"))
    if Terminal.objects.filter(tid=tid).exists():
        raise TerminalError(_("终端号 %(tid)s 已登记") % {"tid": tid})
    if Terminal.objects.filter(serial_no=serial_no).exists():
        raise TerminalError(_("序列号 %(sn)s 已登记") % {"sn": serial_no})
    if Terminal.objects.filter(
        community=community, counter_name=counter_name, enabled=True
    ).exists():
        raise TerminalError(_("收费台 %(c)s 已绑定其他终端") % {"c": counter_name})
    if tmk is not None and len(tmk) != keys.KEY_BYTES:
        raise TerminalError(_("tmk: 须为16字节 (32位十六进制)"))
    key = tmk if tmk is not None else keys.tmk_generate()
    merchant = Merchant.objects.filter(
        company_id=community.company_id, channel=Channel.ACQUIRER, merchant_no=mid
    ).first()
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        terminal = Terminal.objects.create(
            company_id=community.company_id,
            community=community,
            merchant=merchant,
            serial_no=serial_no,
            model=model.strip()[:60],
            kind=kind,
            tid=tid,
            mid=mid,
            counter_name=counter_name,
            location=location.strip()[:200],
            ip_address=ip_address or None,
            network_cert_no=network_cert_no.strip()[:40],
            tmk=key.hex().upper(),
            tmk_kcv=keys.kcv(key),
            token_hash=_token_hash(token),
            token_issued_at=now,
            registered_at=now,
        )
        header = f"{merchant.name if merchant else community.company.name} {community.name}"
        TerminalParams.objects.create(
            terminal=terminal,
            version=1,
            receipt_header=header[:60],
            entry_modes=list(ENTRY_MODES),
            operators=["001"],
            created_at=now,
            created_by=by if getattr(by, "pk", None) else None,
        )
        audit_record(
            actor=by,
            action="terminal.register",
            obj=terminal,
            company=community.company,
            detail={"tid": tid, "serial_no": serial_no, "counter": counter_name},
        )
    return terminal, token


def terminal_token_reset(*, terminal: Terminal, by: Any, now: datetime) -> str:
    """Issue a new API token (the old one stops working at once); return it, shown once.

    Raise AccessDenied unless ``by`` is an administrator of the terminal's company.
    """
    require_role(
        by, MANAGE_ROLES, company_id=terminal.company_id, community_id=terminal.community_id
    )
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        Terminal.objects.filter(pk=terminal.pk).update(
            token_hash=_token_hash(token), token_issued_at=now
        )
        audit_record(actor=by, action="terminal.token_reset", obj=terminal, company=None)
    terminal.token_issued_at = now
    return token


def terminal_enable(*, terminal: Terminal, enabled: bool, by: Any, now: datetime) -> Terminal:
    """Enable or disable a terminal (a disabled one is answered 403 by the API).

    Raise AccessDenied unless ``by`` is an administrator; TerminalError when enabling it would
    put two terminals on one counter.
    """
    require_role(
        by, MANAGE_ROLES, company_id=terminal.company_id, community_id=terminal.community_id
    )
    if enabled and (
        Terminal.objects.filter(
            community_id=terminal.community_id, counter_name=terminal.counter_name, enabled=True
        )
        .exclude(pk=terminal.pk)
        .exists()
    ):
        raise TerminalError(_("收费台 %(c)s 已绑定其他终端") % {"c": terminal.counter_name})
    with transaction.atomic():
        Terminal.objects.filter(pk=terminal.pk).update(enabled=enabled)
        audit_record(
            actor=by, action="terminal.enable" if enabled else "terminal.disable", obj=terminal
        )
    terminal.enabled = enabled
    return terminal


def terminal_key_export(*, terminal: Terminal, by: Any, now: datetime) -> keys.KeyComponents:
    """Return the TMK as two fresh XOR components with check values, for loading a device.

    Finance or administrators only (AccessDenied); every export is audited (who, when, the
    KCV, never the key).
    """
    require_role(
        by, KEY_EXPORT_ROLES, company_id=terminal.company_id, community_id=terminal.community_id
    )
    parts = keys.split_components(terminal.tmk_bytes)
    audit_record(
        actor=by,
        action="terminal.key_export",
        obj=terminal,
        detail={"tid": terminal.tid, "kcv": parts.kcv, "at": now.isoformat()},
    )
    return parts


def terminal_authenticate(*, tid: str, token: str) -> Terminal:
    """Return the terminal ``tid`` if ``token`` is its current token.

    Raise TerminalAuthError for an unknown TID or a wrong token, TerminalDisabled when the
    terminal is disabled.
    """
    terminal = Terminal.objects.filter(tid=tid).first() if tid else None
    if terminal is None or not hmac.compare_digest(terminal.token_hash, _token_hash(token)):
        raise TerminalAuthError(_("终端号或令牌错误"))
    if not terminal.enabled:
        raise TerminalDisabled(_("终端 %(tid)s 已停用") % {"tid": tid})
    return terminal


# --- heartbeat, parameters, releases ---------------------------------------------------------


def _opt_int(
    data: dict[str, Any], name: str, *, low: int = 0, high: int | None = None
) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or value < low
        or (high is not None and value > high)
    ):
        raise BadReport(_("%(field)s: 须为整数") % {"field": name})
    return value


def _opt_str(data: dict[str, Any], name: str, limit: int) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise BadReport(_("%(field)s: 须为不超过%(n)s个字符的文本") % {"field": name, "n": limit})
    return value


def _opt_time(data: dict[str, Any], name: str) -> datetime | None:
    value = data.get(name)
    if value in (None, ""):
        return None
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None or parsed.tzinfo is None:
        raise BadReport(_("%(field)s: 须为带时区的 ISO 8601 时间") % {"field": name})
    return parsed


def heartbeat_record(
    *, terminal: Terminal, data: dict[str, Any], ip_address: str | None, now: datetime
) -> dict[str, Any]:
    """Record a heartbeat and return the answer: newer parameters, an application update.

    Raise BadReport for a malformed heartbeat (nothing recorded).
    """
    paper = data.get("paper")
    if paper not in (None, "ok", "low", "out"):
        raise BadReport(_("paper: 须为 ok、low、out 或 null"))
    battery = _opt_int(data, "battery", high=100)
    version = _opt_str(data, "app_version", 20)
    batch = _opt_str(data, "batch", 6)
    open_count = _opt_int(data, "batch_open_count") or 0
    pending = _opt_int(data, "pending_reports") or 0
    reversals = _opt_int(data, "pending_reversals") or 0
    params_version = _opt_int(data, "params_version") or 0
    last_txn_at = _opt_time(data, "last_txn_at")
    training = data.get("training") is True
    with transaction.atomic():
        Heartbeat.objects.create(
            terminal=terminal,
            received_at=now,
            app_version=version,
            batch_no=batch,
            batch_open_count=open_count,
            paper=paper or "",
            battery=battery,
            pending_reports=pending,
            pending_reversals=reversals,
            params_version=params_version,
            training=training,
            ip_address=ip_address,
        )
        updates: dict[str, Any] = {
            "last_seen_at": now,
            "app_version": version,
            "batch_no": batch,
            "batch_open_count": open_count,
            "paper": paper or "",
            "battery": battery,
            "pending_reports": pending,
            "params_version": params_version,
            "training": training,
        }
        if last_txn_at is not None:
            updates["last_txn_at"] = last_txn_at
        Terminal.objects.filter(pk=terminal.pk).update(**updates)
    for name, value in updates.items():
        setattr(terminal, name, value)
    latest = TerminalParams.objects.filter(terminal=terminal).order_by("-version").first()
    answer: dict[str, Any] = {"server_time": now.isoformat(), "params_version": params_version}
    answer["params"] = None
    if latest is not None:
        answer["params_version"] = latest.version
        if latest.version > params_version:
            answer["params"] = latest.as_wire()
    target = release_target(terminal)
    answer["app_update"] = (
        {"version": target.version, "url": target.url, "sha256": target.sha256}
        if target is not None and target.version != version
        else None
    )
    return answer


def params_set(
    *,
    terminal: Terminal,
    timeout_s: int,
    receipt_header: str,
    entry_modes: list[str],
    operators: list[str],
    training: bool,
    by: Any,
    now: datetime,
) -> TerminalParams:
    """Save a new version of the terminal's parameters (pushed with the next heartbeat).

    Raise AccessDenied unless ``by`` is an administrator, TerminalError for a bad value.
    """
    require_role(
        by, MANAGE_ROLES, company_id=terminal.company_id, community_id=terminal.community_id
    )
    if not isinstance(timeout_s, int) or not 5 <= timeout_s <= 120:
        raise TerminalError(_("timeout_s: 须在5到120秒之间"))
    header = (receipt_header or "").strip()
    if not header or len(header) > 60:
        raise TerminalError(_("receipt_header: 必填, 不超过60个字符"))
    bad = [m for m in entry_modes if m not in ENTRY_MODES]
    if bad or not entry_modes:
        raise TerminalError(_("entry_modes: 只能是 stripe、chip、tap, 至少一种"))
    ops = [o.strip() for o in operators if o.strip()]
    if not ops or any(not re.fullmatch(r"\d{3}", o) for o in ops):
        raise TerminalError(_("operators: 每个操作员号须为3位数字, 至少一个"))
    with transaction.atomic():
        Terminal.objects.select_for_update().filter(pk=terminal.pk).values_list("pk").first()
        last = (
            TerminalParams.objects.filter(terminal=terminal)
            .order_by("-version")
            .values_list("version", flat=True)
            .first()
        )
        params = TerminalParams.objects.create(
            terminal=terminal,
            version=(last or 0) + 1,
            timeout_s=timeout_s,
            receipt_header=header,
            entry_modes=[m for m in ENTRY_MODES if m in entry_modes],
            operators=ops,
            training=training,
            created_at=now,
            created_by=by if getattr(by, "pk", None) else None,
        )
        audit_record(
            actor=by, action="terminal.params", obj=terminal, detail={"version": params.version}
        )
    return params


def release_create(
    *,
    company_id: int,
    version: str,
    url: str,
    sha256: str,
    share_pct: int,
    by: Any,
    now: datetime,
    notes: str = "",
) -> Release:
    """Start rolling out application ``version`` to ``share_pct`` % of the company's terminals.

    Raise AccessDenied unless ``by`` is an administrator, TerminalError for bad input.
    """
    require_role(by, MANAGE_ROLES, company_id=company_id)
    version = (version or "").strip()
    if not re.fullmatch(r"\d+(\.\d+){1,3}", version):
        raise TerminalError(_("version: 形如 1.5.0"))
    if not re.fullmatch(r"[0-9a-f]{64}", (sha256 or "").strip().lower()):
        raise TerminalError(_("sha256: 须为64位十六进制"))
    if not (url or "").startswith(("https://", "http://")):
        raise TerminalError(_("url: 须为 http(s) 地址"))
    _check_share(share_pct)
    if Release.objects.filter(company_id=company_id, version=version).exists():
        raise TerminalError(_("版本 %(v)s 已存在") % {"v": version})
    with transaction.atomic():
        release = Release.objects.create(
            company_id=company_id,
            version=version,
            url=url.strip(),
            sha256=sha256.strip().lower(),
            notes=notes.strip()[:200],
            share_pct=share_pct,
            state=Release.State.COMPLETE if share_pct == 100 else Release.State.ROLLING,
            created_at=now,
            changed_at=now,
            created_by=by if getattr(by, "pk", None) else None,
        )
        audit_record(
            actor=by, action="release.create", obj=release, detail={"share_pct": share_pct}
        )
    return release


def _check_share(share_pct: int) -> None:
    if not isinstance(share_pct, int) or not 1 <= share_pct <= 100:
        raise TerminalError(_("share_pct: 须在1到100之间"))


def release_share_set(*, release: Release, share_pct: int, by: Any, now: datetime) -> Release:
    """Widen (or narrow) a rolling release to ``share_pct`` %; 100 completes it.

    Raise AccessDenied unless ``by`` is an administrator, TerminalError for a rolled-back
    release or a bad share.
    """
    require_role(by, MANAGE_ROLES, company_id=release.company_id)
    _check_share(share_pct)
    if release.state == Release.State.ROLLED_BACK:
        raise TerminalError(_("版本 %(v)s 已回滚") % {"v": release.version})
    state = Release.State.COMPLETE if share_pct == 100 else Release.State.ROLLING
    with transaction.atomic():
        Release.objects.filter(pk=release.pk).update(
            share_pct=share_pct, state=state, changed_at=now
        )
        audit_record(actor=by, action="release.share", obj=release, detail={"share_pct": share_pct})
    release.share_pct, release.state, release.changed_at = share_pct, state, now
    return release


def release_rollback(*, release: Release, by: Any, now: datetime) -> Release:
    """Roll a release back: the terminals that took it are told to go back to the previous
    complete release. Raise AccessDenied unless ``by`` is an administrator."""
    require_role(by, MANAGE_ROLES, company_id=release.company_id)
    with transaction.atomic():
        Release.objects.filter(pk=release.pk).update(
            state=Release.State.ROLLED_BACK, changed_at=now
        )
        audit_record(actor=by, action="release.rollback", obj=release)
    release.state, release.changed_at = Release.State.ROLLED_BACK, now
    return release


def release_selects(release: Release, terminal: Terminal) -> bool:
    """Whether a staged roll-out of ``release`` includes ``terminal`` (stable per TID)."""
    if release.state == Release.State.COMPLETE:
        return True
    if release.state != Release.State.ROLLING:
        return False
    digest = hashlib.sha256(f"{release.version}:{terminal.tid}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < release.share_pct


def release_target(terminal: Terminal) -> Release | None:
    """The release ``terminal`` should run: the newest one whose roll-out selects it."""
    for release in Release.objects.filter(company_id=terminal.company_id).exclude(
        state=Release.State.ROLLED_BACK
    ):
        if release_selects(release, terminal):
            return release
    return None


# --- the push queue --------------------------------------------------------------------------


def request_push(
    *,
    terminal: Terminal,
    kind: str,
    amount_fen: int,
    now: datetime,
    ttl_s: int,
    order_id: int | None = None,
    payment_id: int | None = None,
    payee: str = "",
    reference: str = "",
    original: dict[str, Any] | None = None,
    reason: str = "",
    requested_by: Any = None,
    approved_by: Any = None,
) -> TerminalRequest:
    """Queue a request for ``terminal``; it is handed out by the long poll until it is
    reported on or expires ``ttl_s`` seconds from now. Raise TerminalError for bad input."""
    if kind not in TerminalRequest.Kind.values:
        raise TerminalError(_("kind: 未知的请求类型 %(k)s") % {"k": kind})
    if (
        not isinstance(amount_fen, int)
        or amount_fen < 0
        or (kind != "settle" and kind != "balance" and amount_fen <= 0)
    ):
        raise TerminalError(_("amount_fen: 须为正整数(分)"))
    if not terminal.enabled:
        raise TerminalError(_("终端 %(tid)s 已停用") % {"tid": terminal.tid})
    return TerminalRequest.objects.create(
        terminal=terminal,
        kind=kind,
        amount_fen=amount_fen,
        order_id=order_id,
        payment_id=payment_id,
        payee=payee[:120],
        reference=reference[:40],
        original=original,
        reason=reason[:200],
        requested_by=requested_by if getattr(requested_by, "pk", None) else None,
        approved_by=approved_by if getattr(approved_by, "pk", None) else None,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_s),
    )


def settlement_request(*, terminal: Terminal, by: Any, now: datetime) -> TerminalRequest:
    """Ask the terminal to settle its batch now (end of day); return the queued request.

    One open settle request at a time (asking again returns it). Raise AccessDenied unless
    ``by`` is finance or an administrator there, TerminalError for a disabled terminal.
    """
    require_role(
        by, KEY_EXPORT_ROLES, company_id=terminal.company_id, community_id=terminal.community_id
    )
    open_one = TerminalRequest.objects.filter(
        terminal=terminal,
        kind=TerminalRequest.Kind.SETTLE,
        state__in=[TerminalRequest.State.QUEUED, TerminalRequest.State.ACCEPTED],
    ).first()
    if open_one is not None:
        return open_one
    req = request_push(
        terminal=terminal,
        kind=TerminalRequest.Kind.SETTLE,
        amount_fen=0,
        ttl_s=3600,
        requested_by=by,
        now=now,
    )
    audit_record(
        actor=by, action="terminal.settle_request", obj=terminal, detail={"request": req.pk}
    )
    return req


def requests_expire(*, terminal_id: int | None = None, now: datetime) -> int:
    """Mark queued requests past their ``expires_at`` expired; return how many."""
    qs = TerminalRequest.objects.filter(state=TerminalRequest.State.QUEUED, expires_at__lt=now)
    if terminal_id is not None:
        qs = qs.filter(terminal_id=terminal_id)
    return qs.update(state=TerminalRequest.State.EXPIRED, closed_at=now)


def request_next(*, terminal: Terminal, now: datetime) -> TerminalRequest | None:
    """Return the oldest open request of ``terminal`` (queued or accepted), expiring stale ones.

    Runs in autocommit: the long poll calls it repeatedly without holding a transaction.
    """
    requests_expire(terminal_id=terminal.pk, now=now)
    return (
        TerminalRequest.objects.filter(
            terminal=terminal,
            state__in=[TerminalRequest.State.QUEUED, TerminalRequest.State.ACCEPTED],
        )
        .order_by("pk")
        .first()
    )


def request_parse_id(public_id: str) -> int:
    """Return the pk of ``R-000123``; raise RequestClosed (unknown) for anything else."""
    match = re.fullmatch(r"R-(\d{1,12})", public_id or "")
    if match is None:
        raise RequestClosed(_("请求 %(id)s 不存在") % {"id": public_id})
    return int(match.group(1))


def request_accept(*, terminal: Terminal, public_id: str, now: datetime) -> TerminalRequest:
    """Mark the request shown on the terminal's screen; the cashier can no longer cancel it.

    Accepting twice is fine. Raise RequestClosed when it was cancelled, expired or is unknown.
    """
    pk = request_parse_id(public_id)
    with transaction.atomic():
        req = TerminalRequest.objects.select_for_update().filter(pk=pk, terminal=terminal).first()
        if req is None:
            raise RequestClosed(_("请求 %(id)s 不存在") % {"id": public_id})
        if req.state == TerminalRequest.State.QUEUED and req.expires_at < now:
            TerminalRequest.objects.filter(pk=pk).update(
                state=TerminalRequest.State.EXPIRED, closed_at=now
            )
            req.state = TerminalRequest.State.EXPIRED
        if req.state == TerminalRequest.State.ACCEPTED:
            return req
        if req.state != TerminalRequest.State.QUEUED:
            raise RequestClosed(
                _("请求 %(id)s 已%(state)s") % {"id": public_id, "state": req.get_state_display()}
            )
        TerminalRequest.objects.filter(pk=pk).update(
            state=TerminalRequest.State.ACCEPTED, accepted_at=now
        )
        req.state, req.accepted_at = TerminalRequest.State.ACCEPTED, now
        return req


def request_cancel(*, request: TerminalRequest, now: datetime) -> TerminalRequest:
    """Cancel a request the terminal has not accepted yet; cancelling twice is fine.

    Raise RequestClosed once the terminal accepted it (the card may be in the reader) or it
    finished.
    """
    with transaction.atomic():
        req = TerminalRequest.objects.select_for_update().get(pk=request.pk)
        if req.state in (TerminalRequest.State.CANCELLED, TerminalRequest.State.EXPIRED):
            return req
        if req.state != TerminalRequest.State.QUEUED:
            raise RequestClosed(_("终端已受理, 不能取消; 请在终端上操作"))
        TerminalRequest.objects.filter(pk=req.pk).update(
            state=TerminalRequest.State.CANCELLED, closed_at=now
        )
        req.state, req.closed_at = TerminalRequest.State.CANCELLED, now
        return req


# --- result reports --------------------------------------------------------------------------

_MASKED_PAN = re.compile(r"\d{6}\*{2,9}\d{4}")
_DIGIT_RUN = re.compile(r"\d{13,19}")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_number_field(data: dict[str, Any]) -> str | None:
    """The name of a field that carries a full card number or track data, else None."""
    for name, value in data.items():
        if isinstance(value, dict):
            inner = card_number_field(value)
            if inner:
                return f"{name}.{inner}"
            continue
        if not isinstance(value, str):
            continue
        if name == "masked_pan" and value and not _MASKED_PAN.fullmatch(value):
            return name
        if any(_luhn_ok(run) for run in _DIGIT_RUN.findall(value)) or re.search(
            r"\d{12,19}=\d{4}", value
        ):
            return name
    return None


@dataclass(frozen=True)
class ResultReport:
    """A validated ``POST results`` body."""

    report_id: str
    request_id: str | None
    kind: str
    approved: bool
    reversed: bool
    training: bool
    response_code: str
    message: str
    amount_fen: int
    rrn: str
    auth_code: str
    masked_pan: str
    card_type: str
    entry_mode: str
    tid: str
    mid: str
    batch: str
    stan: str
    txn_date: str
    txn_time: str
    settle_date: str
    original: dict[str, Any] | None


def _req_str(data: dict[str, Any], name: str, pattern: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        raise BadReport(_("%(field)s: 格式错误") % {"field": name})
    return value


def result_parse(*, terminal: Terminal, data: dict[str, Any]) -> ResultReport:
    """Validate a result report of ``terminal``; raise BadReport naming the bad field.

    A full card number anywhere is refused and logged without the number.
    """
    field = card_number_field(data)
    if field is not None:
        log.warning(
            "terminal %s: result report %s refused: full card number in %s",
            terminal.tid,
            str(data.get("report_id", ""))[:60],
            field,
        )
        raise BadReport(
            _("%(field)s: 只接受掩码卡号(前6位后4位), 不得上送完整卡号") % {"field": field}
        )
    kind = data.get("kind")
    if kind not in RESULT_KINDS:
        raise BadReport(_("kind: 须为 purchase、void、refund 或 balance"))
    report_id = _req_str(data, "report_id", r"[0-9A-Za-z_-]{1,60}")
    tid = _req_str(data, "tid", r"\d{8}")
    if tid != terminal.tid or not report_id.startswith(f"{terminal.tid}-"):
        raise BadReport(_("tid: 与认证的终端 %(tid)s 不符") % {"tid": terminal.tid})
    for flag in ("approved",):
        if not isinstance(data.get(flag), bool):
            raise BadReport(_("%(field)s: 须为 true 或 false") % {"field": flag})
    amount = data.get("amount_fen")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        raise BadReport(_("amount_fen: 须为非负整数(分)"))
    approved = bool(data["approved"])
    if approved and kind != "balance" and amount <= 0:
        raise BadReport(_("amount_fen: 须为正整数(分)"))
    request_id = data.get("request_id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadReport(_("request_id: 须为文本或 null"))
    original = data.get("original")
    if original is not None and not isinstance(original, dict):
        raise BadReport(_("original: 须为对象或 null"))
    rrn = _opt_str(data, "rrn", 12)
    if approved and kind != "balance" and not re.fullmatch(r"[0-9A-Za-z]{12}", rrn):
        raise BadReport(_("rrn: 承兑的交易须有12位参考号"))
    return ResultReport(
        report_id=report_id,
        request_id=request_id,
        kind=kind,
        approved=approved,
        reversed=data.get("reversed") is True,
        training=data.get("training") is True,
        response_code=_req_str(data, "response_code", r"[0-9A-Z]{2}"),
        message=_opt_str(data, "message", 60),
        amount_fen=amount,
        rrn=rrn,
        auth_code=_opt_str(data, "auth_code", 6),
        masked_pan=_opt_str(data, "masked_pan", 19),
        card_type=_opt_str(data, "card_type", 10),
        entry_mode=_opt_str(data, "entry_mode", 10),
        tid=tid,
        mid=_opt_str(data, "mid", 15),
        batch=_req_str(data, "batch", r"\d{6}"),
        stan=_req_str(data, "stan", r"\d{6}"),
        txn_date=_opt_str(data, "txn_date", 8),
        txn_time=_opt_str(data, "txn_time", 6),
        settle_date=_opt_str(data, "settle_date", 8),
        original=original,
    )


def result_record(*, terminal: Terminal, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Record a result report exactly once and return the answer for the terminal.

    The same ``report_id`` again returns the first answer and changes nothing. The report and
    whatever it posts (payment, refund) commit together. Raise BadReport for a malformed
    report (nothing recorded).
    """
    report = result_parse(terminal=terminal, data=data)
    first = TerminalReport.objects.filter(report_id=report.report_id).first()
    if first is not None:
        return dict(first.answer)
    from wuye.channels.card.services import card_result_apply

    try:
        with transaction.atomic():
            return card_result_apply(terminal=terminal, report=report, now=now)
    except IntegrityError:
        first = TerminalReport.objects.filter(report_id=report.report_id).first()
        if first is None:
            raise
        return dict(first.answer)


def settlement_record(*, terminal: Terminal, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Record the terminal's settlement of a batch with Wuye's own totals for it; return the
    answer (``matches`` says whether they agree). Exactly once per ``report_id``. Raise
    BadReport for a malformed report."""
    report_id = _req_str(data, "report_id", r"[0-9A-Za-z_-]{1,60}")
    if not report_id.startswith(f"{terminal.tid}-"):
        raise BadReport(_("report_id: 须以终端号 %(tid)s 开头") % {"tid": terminal.tid})
    first = Settlement.objects.filter(report_id=report_id).first()
    if first is not None:
        return dict(first.answer)
    batch = _req_str(data, "batch", r"\d{6}")
    verdict = data.get("verdict")
    if verdict not in Settlement.Verdict.values:
        raise BadReport(_("verdict: 须为 balanced 或 not_balanced"))
    totals = {}
    for name in ("debit_total_fen", "debit_count", "credit_total_fen", "credit_count"):
        value = _opt_int(data, name)
        if value is None:
            raise BadReport(_("%(field)s: 必填的非负整数") % {"field": name})
        totals[name] = value
    settle_date = _req_str(data, "settle_date", r"\d{8}")
    settled_at = _opt_time(data, "settled_at") or now
    from wuye.terminals.selectors import batch_totals

    ours = batch_totals(tid=terminal.tid, batch=batch)
    matches = (
        ours.debit_total_fen == totals["debit_total_fen"]
        and ours.debit_count == totals["debit_count"]
        and ours.credit_total_fen == totals["credit_total_fen"]
        and ours.credit_count == totals["credit_count"]
    )
    answer = {
        "status": "recorded",
        "wuye_debit_total_fen": ours.debit_total_fen,
        "wuye_debit_count": ours.debit_count,
        "wuye_credit_total_fen": ours.credit_total_fen,
        "wuye_credit_count": ours.credit_count,
        "matches": matches,
    }
    try:
        with transaction.atomic():
            Settlement.objects.create(
                report_id=report_id,
                terminal=terminal,
                batch=batch,
                verdict=verdict,
                settle_date=settle_date,
                settled_at=settled_at,
                wuye_debit_total_fen=ours.debit_total_fen,
                wuye_debit_count=ours.debit_count,
                wuye_credit_total_fen=ours.credit_total_fen,
                wuye_credit_count=ours.credit_count,
                matches=matches,
                answer=answer,
                received_at=now,
                **totals,
            )
            # The batch is closed on the terminal: nothing of it is open any more.
            Terminal.objects.filter(pk=terminal.pk, batch_no=batch).update(batch_open_count=0)
            TerminalRequest.objects.filter(
                terminal=terminal,
                kind=TerminalRequest.Kind.SETTLE,
                state__in=[TerminalRequest.State.QUEUED, TerminalRequest.State.ACCEPTED],
            ).update(state=TerminalRequest.State.DONE, closed_at=now)
    except IntegrityError:
        first = Settlement.objects.filter(report_id=report_id).first()
        if first is None:
            raise
        return dict(first.answer)
    return answer


__all__ = [
    "BadReport",
    "RequestClosed",
    "TerminalAuthError",
    "TerminalDisabled",
    "TerminalError",
    "heartbeat_record",
    "params_set",
    "release_create",
    "release_rollback",
    "release_share_set",
    "request_accept",
    "request_cancel",
    "request_next",
    "request_push",
    "result_record",
    "settlement_record",
    "settlement_request",
    "terminal_authenticate",
    "terminal_enable",
    "terminal_key_export",
    "terminal_register",
    "terminal_token_reset",
]
