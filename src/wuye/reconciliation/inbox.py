"""The watched inbox: files dropped into a folder are imported and filed away.

``inbox_scan`` makes one pass: each regular file directly in the inbox is imported
(:func:`wuye.reconciliation.importers.file_import`, kind sniffed) and moved to ``done/`` or,
rejected, to ``rejected/`` with ``<name>.error.txt`` holding the error (file, line, field).
A name already present in ``done/``/``rejected/`` gets a numeric suffix; nothing is
overwritten.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wuye.estates.models import Company

from .importers import FileRejected, file_import

IGNORED_SUFFIXES = (".part", ".tmp", ".crdownload", ".error.txt")


@dataclass(frozen=True)
class Outcome:
    """What happened to one inbox file: ``imported``, ``duplicate`` or ``rejected``."""

    name: str
    status: str
    message: str = ""
    source_id: int | None = None


def _free(target_dir: Path, name: str) -> Path:
    target = target_dir / name
    n = 1
    while target.exists():
        target = target_dir / f"{name}.{n}"
        n += 1
    return target


def inbox_scan(
    inbox: str | Path,
    *,
    company: Company,
    user: Any = None,
    account_no: str = "",
    seen_sizes: dict[str, int] | None = None,
) -> list[Outcome]:
    """Import every complete file in ``inbox`` once; return what happened to each.

    With ``seen_sizes`` (kept by the caller between passes) a file is taken only once its size
    is the same as on the previous pass, so a file still being copied waits. Raises
    NotADirectoryError if ``inbox`` exists and is not a directory (a missing one is created).
    """
    root = Path(inbox)
    if not root.exists():
        root.mkdir(parents=True)
    if not root.is_dir():
        raise NotADirectoryError(str(root))
    done, rejected = root / "done", root / "rejected"
    done.mkdir(exist_ok=True)
    rejected.mkdir(exist_ok=True)
    outcomes: list[Outcome] = []
    for path in sorted(p for p in root.iterdir() if p.is_file()):
        name = path.name
        if name.startswith(".") or name.endswith(IGNORED_SUFFIXES):
            continue
        if seen_sizes is not None:
            size = path.stat().st_size
            if seen_sizes.get(name) != size:
                seen_sizes[name] = size
                continue
            seen_sizes.pop(name, None)
        try:
            result = file_import(path, company=company, user=user, account_no=account_no)
        except FileRejected as exc:
            target = _free(rejected, name)
            os.replace(path, target)
            target.with_name(target.name + ".error.txt").write_text(str(exc) + "\n", "utf-8")
            outcomes.append(Outcome(name, "rejected", str(exc)))
            continue
        os.replace(path, _free(done, name))
        status = "imported" if result.created else "duplicate"
        outcomes.append(Outcome(name, status, source_id=result.source.pk))
    return outcomes
