"""Declarative specs of the spreadsheets Wuye imports and exports, and cell parsing.

One :class:`Spec` per kind of data names its columns (Chinese header, English header, type,
required, allowed values) and an example row. Templates, imports, error reports and exports
are all driven by these specs, so a file exported by Wuye re-imports as it is.

Cells are parsed without ever trusting binary floating point: openpyxl returns numeric cells
as ``float``; they are turned into ``Decimal`` through ``repr`` (the shortest string that reads
back as the same float), and a value with more decimals than the column allows is rejected
instead of being rounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import translation

from wuye.core.money import MoneyFormatError, format_yuan, parse_yuan
from wuye.estates.models import Meter, ParkingSpace, Resident, Unit


class CellError(ValueError):
    """A cell's value is not acceptable; carries the reason in Chinese and English."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(zh)
        self.zh = zh
        self.en = en


TEXT = "text"
INT = "int"
DECIMAL = "decimal"
MONEY = "money"
DATE = "date"
BOOL = "bool"
ENUM = "enum"

TRUE_WORDS = {"是", "y", "yes", "true", "1", "√", "t"}
FALSE_WORDS = {"否", "n", "no", "false", "0", "×", "f"}
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%Y年%m月%d日")


def cell_text(value: Any) -> str:
    """Return a cell as text: whole-number floats lose their ``.0``, strings are stripped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else str(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def cell_decimal(value: Any, *, places: int) -> Decimal:
    """Return a cell as an exact Decimal with at most ``places`` decimals.

    Raises CellError for text that is not a number or for too many decimals.
    """
    if isinstance(value, bool):
        raise CellError("不是数字", "not a number")
    if isinstance(value, float):
        raw = repr(value)
    else:
        raw = cell_text(value).replace(",", "").replace("，", "")
    try:
        d = Decimal(raw)
    except InvalidOperation as exc:
        raise CellError(f"不是数字: {raw}", f"not a number: {raw}") from exc
    if not d.is_finite():
        raise CellError(f"不是数字: {raw}", f"not a number: {raw}")
    if d != d.quantize(Decimal(1).scaleb(-places), rounding="ROUND_DOWN"):
        raise CellError(
            f"最多 {places} 位小数: {raw}", f"at most {places} decimals allowed: {raw}"
        )
    return d.quantize(Decimal(1).scaleb(-places))


@dataclass(frozen=True)
class Column:
    """One column of a sheet.

    ``choices`` maps each stored code to its Chinese label; either is accepted on import, the
    label is written on export. ``places`` is the number of decimals of a DECIMAL column.
    """

    key: str
    zh: str
    en: str
    type: str = TEXT
    required: bool = False
    max_length: int = 0
    places: int = 2
    min_value: Decimal | None = None
    choices: tuple[tuple[str, str], ...] = ()
    default: Any = None
    width: int = 14
    note_zh: str = ""
    note_en: str = ""

    def parse(self, value: Any) -> Any:
        """Turn a raw cell into a Python value (``None``/default when blank).

        Raises CellError naming why the value is not acceptable.
        """
        blank = value is None or (isinstance(value, str) and not value.strip())
        if blank:
            if self.required:
                raise CellError("必填", "required")
            return self.default
        if self.type == TEXT:
            text = cell_text(value)
            if self.max_length and len(text) > self.max_length:
                raise CellError(
                    f"超过 {self.max_length} 个字符", f"longer than {self.max_length} characters"
                )
            return text
        if self.type == INT:
            d = cell_decimal(value, places=0)
            return int(d)
        if self.type == DECIMAL:
            d = cell_decimal(value, places=self.places)
            if self.min_value is not None and d < self.min_value:
                raise CellError(f"不能小于 {self.min_value}", f"must not be below {self.min_value}")
            return d
        if self.type == MONEY:
            raw = repr(value) if isinstance(value, float) else cell_text(value)
            if isinstance(value, bool):
                raise CellError("不是金额", "not an amount")
            try:
                fen = parse_yuan(raw)
            except MoneyFormatError as exc:
                raise CellError(
                    f"金额无效(元, 最多两位小数): {raw}",
                    f"invalid amount (yuan, at most two decimals): {raw}",
                ) from exc
            if fen < 0:
                raise CellError("金额不能为负", "amount must not be negative")
            return fen
        if self.type == DATE:
            return parse_date(value)
        if self.type == BOOL:
            word = cell_text(value).lower()
            if word in TRUE_WORDS:
                return True
            if word in FALSE_WORDS:
                return False
            raise CellError(f"应填 是 或 否: {word}", f"expected 是/否 (yes/no): {word}")
        if self.type == ENUM:
            word = cell_text(value)
            for code, label in self.choices:
                if word == label or word.lower() == code:
                    return code
            allowed = "/".join(label for _, label in self.choices)
            codes = "/".join(code for code, _ in self.choices)
            raise CellError(
                f"可选值为 {allowed}: {word}", f"allowed values are {codes} ({allowed}): {word}"
            )
        raise AssertionError(f"unknown column type {self.type}")

    def display(self, value: Any) -> Any:
        """Return the value as written to a sheet (labels for enums, 是/否, yuan strings)."""
        if value is None or value == "":
            return None
        if self.type == ENUM:
            return dict(self.choices).get(value, value)
        if self.type == BOOL:
            return "是" if value else "否"
        if self.type == MONEY:
            # A Decimal cell is written as a number; it reads back exactly (see cell_decimal).
            return Decimal(format_yuan(int(value)))
        if self.type == DECIMAL:
            return Decimal(value)
        if self.type == DATE:
            return value
        return value

    def allowed_labels(self) -> list[str]:
        if self.type == ENUM:
            return [label for _, label in self.choices]
        if self.type == BOOL:
            return ["是", "否"]
        return []

    def describe_zh(self) -> str:
        """A line of the template's 说明 sheet: format and allowed values in Chinese."""
        kinds = {
            TEXT: "文本",
            INT: "整数",
            DECIMAL: f"数字, 最多 {self.places} 位小数",
            MONEY: "金额(元), 最多两位小数",
            DATE: "日期, 如 2024-01-31",
            BOOL: "是/否",
            ENUM: "可选: "
            + ", ".join(f"{label}({code})" for code, label in self.choices),
        }
        return "; ".join(x for x in [kinds[self.type], self.note_zh] if x)

    def describe_en(self) -> str:
        kinds = {
            TEXT: "text",
            INT: "whole number",
            DECIMAL: f"number, at most {self.places} decimals",
            MONEY: "amount in yuan, at most two decimals",
            DATE: "date, e.g. 2024-01-31",
            BOOL: "是 (yes) / 否 (no)",
            ENUM: "one of: " + ", ".join(code for code, _ in self.choices),
        }
        return "; ".join(x for x in [kinds[self.type], self.note_en] if x)


def parse_date(value: Any) -> date:
    """Parse a date cell (a real Excel date, or text such as 2024-01-31 or 2024/1/31).

    Raises CellError otherwise.
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = cell_text(value)
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise CellError(f"不是日期(应如 2024-01-31): {text}", f"not a date (e.g. 2024-01-31): {text}")


@dataclass(frozen=True)
class Spec:
    """A kind of import/export: its sheet, columns, natural key and example row."""

    kind: str
    title_zh: str
    title_en: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    example: dict[str, Any]
    notes_zh: tuple[str, ...] = ()
    notes_en: tuple[str, ...] = ()

    @property
    def sheet_title(self) -> str:
        return self.title_zh

    def column(self, key: str) -> Column:
        for col in self.columns:
            if col.key == key:
                return col
        raise KeyError(key)


def _choices(text_choices: Any) -> tuple[tuple[str, str], ...]:
    with translation.override("zh-hans"):
        return tuple((str(code), str(label)) for code, label in text_choices.choices)


def _community() -> Column:
    return Column(
        "community", "小区编号", "community code", required=True, max_length=20,
        note_zh="系统中已有的小区编号", note_en="code of an existing community",
    )


def _building(required: bool = True) -> Column:
    return Column("building", "楼栋编号", "building code", required=required, max_length=20)


def _room() -> Column:
    return Column("room", "房号", "room no", required=True, max_length=20)


UNITS = Spec(
    kind="units",
    title_zh="房屋",
    title_en="units",
    columns=(
        _community(),
        Column(
            "building", "楼栋编号", "building code", required=True, max_length=20,
            note_zh="不存在的楼栋会自动创建", note_en="missing buildings are created",
        ),
        Column("building_name", "楼栋名称", "building name", max_length=60,
               note_zh="留空则为 “编号+号楼”", note_en="blank: code + 号楼"),
        _room(),
        Column("floor", "楼层", "floor", type=INT, width=8),
        Column("area_m2", "建筑面积(m²)", "floor area (m²)", type=DECIMAL, required=True,
               places=2, min_value=Decimal(0)),
        Column("inner_area_m2", "套内面积(m²)", "inner area (m²)", type=DECIMAL, places=2,
               min_value=Decimal(0)),
        Column("unit_type", "房屋类型", "type", type=ENUM, choices=_choices(Unit.Type),
               default=Unit.Type.RESIDENTIAL.value, note_zh="留空为住宅",
               note_en="blank: residential"),
        Column("state", "状态", "state", type=ENUM, choices=_choices(Unit.State),
               default=Unit.State.OCCUPIED.value, note_zh="留空为已入住",
               note_en="blank: occupied"),
        Column("handover_date", "交房日期", "handover date", type=DATE),
    ),
    key=("community", "building", "room"),
    example={
        "community": "C001", "building": "1", "building_name": "1号楼", "room": "0301",
        "floor": 3, "area_m2": Decimal("89.50"), "inner_area_m2": Decimal("72.30"),
        "unit_type": "residential", "state": "occupied", "handover_date": date(2020, 6, 30),
    },
    notes_zh=("同一小区+楼栋编号+房号视为同一房屋: 已存在的房屋按文件更新, 不会重复创建。",),
    notes_en=("Community + building code + room no identify a unit: existing units are "
              "updated from the file, never duplicated.",),
)

RESIDENTS = Spec(
    kind="residents",
    title_zh="住户",
    title_en="residents",
    columns=(
        _community(),
        _building(),
        _room(),
        Column("name", "姓名", "name", required=True, max_length=60),
        Column("role", "身份", "role", type=ENUM, choices=_choices(Resident.Role),
               default=Resident.Role.OWNER.value, note_zh="留空为业主", note_en="blank: owner"),
        Column("phone", "手机号", "phone", max_length=20, width=16,
               note_zh="11位手机号或带区号的固话", note_en="mobile or landline with area code"),
        Column("id_card", "身份证号", "ID-card number", max_length=18, width=22,
               note_zh="18位, 请设为文本格式; 导出的脱敏号码可原样导回",
               note_en="18 characters, as text; masked numbers from an export re-import as is"),
        Column("is_primary", "主要联系人", "primary contact", type=BOOL, default=False, width=10,
               note_zh="留空为否", note_en="blank: no"),
        Column("move_in_date", "入住日期", "move-in date", type=DATE),
    ),
    key=("community", "building", "room", "name"),
    example={
        "community": "C001", "building": "1", "room": "0301", "name": "张三", "role": "owner",
        "phone": "13800138000", "id_card": "11010519491231002X", "is_primary": True,
        "move_in_date": date(2020, 7, 1),
    },
    notes_zh=("同一房屋下同名住户视为同一人: 已存在的按文件更新。",
              "身份证号加密保存, 页面和导出只显示脱敏号码。"),
    notes_en=("A resident is identified by unit and name: existing ones are updated.",
              "ID-card numbers are stored encrypted; screens and exports show them masked."),
)

PARKING = Spec(
    kind="parking",
    title_zh="车位",
    title_en="parking spaces",
    columns=(
        _community(),
        Column("code", "车位号", "space code", required=True, max_length=20),
        Column("kind", "类型", "kind", type=ENUM, choices=_choices(ParkingSpace.Kind),
               default=ParkingSpace.Kind.RENTED.value, note_zh="留空为租赁车位",
               note_en="blank: rented"),
        Column("unit", "所属房屋", "unit label", max_length=60,
               note_zh="房屋编号, 如 1-0301 (楼栋编号-房号)",
               note_en="unit label, e.g. 1-0301 (building code-room no)"),
        Column("plate_no", "车牌号", "plate no", max_length=12),
        Column("area_m2", "面积(m²)", "area (m²)", type=DECIMAL, places=2,
               min_value=Decimal(0)),
    ),
    key=("community", "code"),
    example={
        "community": "C001", "code": "B1-001", "kind": "owned", "unit": "1-0301",
        "plate_no": "沪A12345", "area_m2": Decimal("12.50"),
    },
    notes_zh=("同一小区+车位号视为同一车位: 已存在的按文件更新。",),
    notes_en=("Community + space code identify a space: existing ones are updated.",),
)

READINGS = Spec(
    kind="readings",
    title_zh="抄表读数",
    title_en="meter readings",
    columns=(
        _community(),
        Column("serial_no", "表号", "meter serial no", required=True, max_length=40, width=18),
        Column("meter_kind", "仪表类型", "meter kind", type=ENUM, required=True,
               choices=_choices(Meter.Kind)),
        Column("unit", "所属房屋", "unit label", max_length=60,
               note_zh="房屋编号, 如 1-0301; 公摊表留空",
               note_en="unit label, e.g. 1-0301; blank for a shared meter"),
        Column("read_date", "抄表日期", "read date", type=DATE, required=True),
        Column("value", "读数", "reading", type=DECIMAL, required=True, places=3,
               min_value=Decimal(0)),
        Column("is_replacement", "换表", "replacement", type=BOOL, default=False, width=8,
               note_zh="新表起始读数填 是", note_en="是 (yes) for a new meter's first reading"),
    ),
    key=("community", "serial_no", "read_date"),
    example={
        "community": "C001", "serial_no": "W-1-0301", "meter_kind": "water", "unit": "1-0301",
        "read_date": date(2024, 1, 31), "value": Decimal("123.450"), "is_replacement": False,
    },
    notes_zh=("表号第一次出现时自动建表。同一表同一日期只能有一个读数, 重复导入会更新读数。",),
    notes_en=("A meter is created the first time its serial number appears. One reading per "
              "meter and date; re-importing updates it.",),
)

OPENING = Spec(
    kind="opening",
    title_zh="期初余额",
    title_en="opening balances",
    columns=(
        _community(),
        _building(),
        _room(),
        Column("fee_item", "费项编号", "fee item code", max_length=20,
               note_zh="欠费必填; 预存可留空(通用预存)",
               note_en="required for arrears; blank prepaid is general"),
        Column("period_start", "账期开始", "period start", type=DATE,
               note_zh="欠费必填", note_en="required for arrears"),
        Column("period_end", "账期结束(含)", "period end (inclusive)", type=DATE,
               note_zh="欠费必填, 含当天", note_en="required for arrears; the last day"),
        Column("owed_fen", "欠费金额(元)", "amount owed (yuan)", type=MONEY, width=14),
        Column("prepaid_fen", "预存金额(元)", "amount prepaid (yuan)", type=MONEY, width=14),
        Column("due_date", "到期日", "due date", type=DATE,
               note_zh="留空为账期开始+费项缴费期限", note_en="blank: start + fee item's due days"),
        Column("note", "备注", "note", max_length=200, width=20),
    ),
    key=("community", "building", "room", "fee_item", "period_start"),
    example={
        "community": "C001", "building": "1", "room": "0301", "fee_item": "WY",
        "period_start": date(2023, 1, 1), "period_end": date(2023, 12, 31),
        "owed_fen": 107400, "prepaid_fen": None, "due_date": None, "note": "旧系统欠费",
    },
    notes_zh=(
        "每行填欠费金额或预存金额之一。欠费生成期初账单并记账: 借 应收账款 / 贷 期初余额; "
        "预存记账: 借 期初余额 / 贷 预存款(填了费项即为专项预存)。",
        "同一房屋+费项+账期开始的欠费、同一房屋+费项的预存只导入一次; 金额不同会报错, "
        "需要更正时请在系统中做调整, 不要改文件重导。与系统已出账单账期重叠的欠费会被拒绝。",
    ),
    notes_en=(
        "Each row has either an amount owed or an amount prepaid. Arrears become opening "
        "bills posted Dr receivable / Cr opening balance; prepayments post Dr opening balance "
        "/ Cr prepaid (earmarked when a fee item is given).",
        "Arrears per unit, fee item and period start, and prepayments per unit and fee item, "
        "import once; a different amount is an error: correct it by an adjustment instead. "
        "Arrears overlapping a period Wuye already billed are refused.",
    ),
)

SPECS: dict[str, Spec] = {s.kind: s for s in (UNITS, RESIDENTS, PARKING, READINGS, OPENING)}

# Exports that are reports, not re-importable data.
BALANCE_COLUMNS: tuple[Column, ...] = (
    Column("community", "小区编号", "community code"),
    Column("community_name", "小区名称", "community"),
    Column("building", "楼栋编号", "building code"),
    Column("room", "房号", "room no"),
    Column("label", "房屋编号", "unit label"),
    Column("owner", "业主", "owner"),
    Column("owed_fen", "欠费(元)", "owed (yuan)", type=MONEY),
    Column("prepaid_fen", "预存(元)", "prepaid (yuan)", type=MONEY),
)
BALANCES = Spec(
    kind="balances", title_zh="欠费及预存", title_en="arrears and prepaid",
    columns=BALANCE_COLUMNS, key=("community", "building", "room"), example={},
)

EXPORT_KINDS: tuple[str, ...] = (*SPECS, "balances")
KIND_LABELS: dict[str, tuple[str, str]] = {
    s.kind: (s.title_zh, s.title_en) for s in (*SPECS.values(), BALANCES)
}

MASKED_ID_RE = re.compile(r"^\d{6}\*{8}\d{3}[\dX]$")


def spec_for(kind: str) -> Spec:
    """Return the spec of an importable kind. Raises KeyError for an unknown kind."""
    return SPECS[kind]
