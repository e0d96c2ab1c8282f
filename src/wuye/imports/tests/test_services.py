from datetime import date
from decimal import Decimal

import pytest

from wuye.billing.models import Bill
from wuye.estates.models import Building, Meter, MeterReading, ParkingSpace, Resident, Unit
from wuye.imports.models import ImportBatch, OpeningBalance
from wuye.imports.selectors import export_build, household_balances
from wuye.imports.services import batch_error_report, import_file, template_build
from wuye.imports.tests.helpers import sheet, xlsx
from wuye.imports.xlsx import ERROR_FILL, ERROR_HEADER
from wuye.ledger.models import AccountKind, JournalEntry, JournalLine
from wuye.ledger.selectors import account_balance, unbalanced_entry_ids
from wuye.testing.factories import (
    make_building,
    make_community,
    make_company,
    make_fee_item,
    make_unit,
)

pytestmark = pytest.mark.django_db
AS_OF = date(2026, 1, 1)


@pytest.fixture
def community():
    return make_community(make_company(), code="C001", name="阳光小区")


def run(kind, content, company, **kw):
    kw.setdefault("as_of", AS_OF)
    return import_file(kind=kind, company_id=company.pk, content=content,
                       file_name=f"{kind}.xlsx", **kw)


UNIT_ROWS = [
    ["C001", "1", "1号楼", "0101", 1, 89.5, 72.3, "住宅", "已入住", "2020-06-30"],
    ["C001", "1", "1号楼", "0102", 1, "120.00", None, "commercial", "vacant", None],
    ["C001", "2", None, "0201", 2, 95, None, None, None, None],
]


def test_a_good_units_file_imports_every_row_and_creates_missing_buildings(community):
    report = run("units", xlsx("units", UNIT_ROWS), community.company)

    assert report.ok, report.errors
    assert (report.created, report.updated, report.unchanged) == (3, 0, 0)
    u = Unit.objects.get(building__code="1", room_no="0101")
    assert (u.area_m2, u.inner_area_m2, u.unit_type, u.state) == (
        Decimal("89.50"), Decimal("72.30"), "residential", "occupied")
    assert u.handover_date == date(2020, 6, 30)
    assert u.label == "1-0101"
    assert Unit.objects.get(room_no="0102").unit_type == "commercial"
    assert Building.objects.get(code="2").name == "2号楼"
    assert ImportBatch.objects.get(pk=report.batch_id).status == ImportBatch.Status.IMPORTED


def test_a_file_with_several_bad_rows_imports_nothing_and_names_each_row_and_column(community):
    rows = [
        ["C001", "1", None, "0101", 1, 89.5, None, None, None, None],
        ["C001", "1", None, "0102", 1, "八十", None, None, None, None],  # row 4: area
        ["C999", "1", None, "0103", 1, 80, None, None, None, None],  # row 5: community
        ["C001", "1", None, "0104", 1, 80, None, "别墅", None, "2020-13-01"],  # row 6: 2 cells
        ["C001", "1", None, "0101", 1, 70, None, None, None, None],  # row 7: duplicate of 3
    ]
    report = run("units", xlsx("units", rows), community.company)

    assert not report.ok
    found = {(e.row, e.header) for e in report.errors}
    assert found == {
        (4, "建筑面积(m²)"), (5, "小区编号"), (6, "房屋类型"), (6, "交房日期"), (7, "房号"),
    }
    assert any("C999" in e.message for e in report.errors)
    assert all(e.message_en for e in report.errors)
    assert Unit.objects.count() == 0 and Building.objects.count() == 0
    assert ImportBatch.objects.get(pk=report.batch_id).status == ImportBatch.Status.REJECTED


def test_the_error_workbook_marks_the_bad_cells_red_with_the_reason(community):
    rows = [
        ["C001", "1", None, "0101", 1, 89.5, None, None, None, None],
        ["C001", "1", None, "0102", 1, "八十", None, None, None, None],
    ]
    report = run("units", xlsx("units", rows), community.company)

    ws = sheet(report.error_xlsx)
    bad = ws.cell(row=4, column=6)  # 建筑面积(m²)
    assert bad.fill.fgColor.rgb.endswith(ERROR_FILL.fgColor.rgb[-6:])
    assert "不是数字" in bad.comment.text
    assert ws.cell(row=3, column=6).fill.fgColor.rgb != bad.fill.fgColor.rgb
    assert ws.cell(row=1, column=11).value == ERROR_HEADER
    assert "不是数字" in ws.cell(row=4, column=11).value
    assert ws.cell(row=3, column=11).value is None
    batch = ImportBatch.objects.get(pk=report.batch_id)
    assert batch_error_report(batch=batch) == report.error_xlsx
    with batch.error_file.open("rb") as fh:
        assert not fh.read().startswith(b"PK")  # sealed at rest, not a readable workbook


def test_a_dry_run_reports_what_would_happen_and_writes_nothing(community):
    report = run("units", xlsx("units", UNIT_ROWS), community.company, dry_run=True)

    assert report.ok and report.created == 3
    assert Unit.objects.count() == 0 and Building.objects.count() == 0
    assert ImportBatch.objects.get(pk=report.batch_id).status == ImportBatch.Status.VALIDATED


def test_importing_the_same_units_file_twice_changes_nothing(community):
    content = xlsx("units", UNIT_ROWS)
    run("units", content, community.company)
    before = list(Unit.objects.order_by("pk").values())

    again = run("units", content, community.company)

    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    assert again.previous_batch_id is not None
    assert list(Unit.objects.order_by("pk").values()) == before


def test_a_changed_row_updates_the_existing_unit_in_place(community):
    run("units", xlsx("units", UNIT_ROWS), community.company)
    changed = [list(r) for r in UNIT_ROWS]
    changed[0][5] = "90.25"

    report = run("units", xlsx("units", changed), community.company)

    assert (report.created, report.updated, report.unchanged) == (0, 1, 2)
    assert Unit.objects.get(room_no="0101").area_m2 == Decimal("90.25")
    assert Unit.objects.count() == 3


def test_a_company_cannot_import_into_another_companys_community(community):
    other = make_company()

    report = run("units", xlsx("units", UNIT_ROWS), other)

    assert not report.ok
    assert {e.row for e in report.errors} == {3, 4, 5}
    assert Unit.objects.count() == 0


def test_the_template_reimports_as_empty_and_carries_instructions_and_lists(community):
    content = template_build(kind="units")

    report = run("units", content, community.company, dry_run=True)

    assert not report.ok and report.errors[0].message == "文件中没有数据行"
    import io

    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(content))
    assert wb.sheetnames == ["房屋", "说明"]
    ws = wb["房屋"]
    assert ws["A1"].value == "小区编号" and ws["A2"].value == "community code"
    assert ws["D3"].value == "0301"  # the example row
    formulas = {dv.formula1 for dv in ws.data_validations.dataValidation}
    assert '"住宅,商铺,车位,其他"' in formulas


# ---------------------------------------------------------------- residents


@pytest.fixture
def unit(community):
    building = make_building(community, code="1")
    return make_unit(building, room_no="0101", label="1-0101")


def test_residents_import_with_their_id_card_encrypted_and_masked(unit):
    rows = [
        ["C001", "1", "0101", "张三", "业主", "138 0013 8000", "11010519491231002x", "是", None],
        ["C001", "1", "0101", "李四", "tenant", None, None, None, "2021-03-01"],
    ]
    report = run("residents", xlsx("residents", rows), unit.community.company)

    assert report.ok, report.errors
    zhang = Resident.objects.get(name="张三")
    assert zhang.id_card == "11010519491231002X"
    assert zhang.id_card_masked == "110105********002X"
    assert zhang.phone == "13800138000" and zhang.is_primary
    assert Resident.objects.get(name="李四").role == "tenant"


def test_bad_phone_and_id_card_numbers_are_reported_by_column(unit):
    rows = [["C001", "1", "0101", "张三", "业主", "12345", "110105194912310021", None, None]]

    report = run("residents", xlsx("residents", rows), unit.community.company)

    assert {(e.row, e.header) for e in report.errors} == {(3, "手机号"), (3, "身份证号")}
    assert Resident.objects.count() == 0


def test_a_residents_export_with_masked_ids_reimports_without_changes(unit):
    rows = [["C001", "1", "0101", "张三", "业主", "13800138000", "11010519491231002X", "是", None]]
    run("residents", xlsx("residents", rows), unit.community.company)

    exported = export_build(kind="residents", company=unit.community.company)
    assert "11010519491231002X" not in str(list(sheet(exported).values))
    report = run("residents", exported, unit.community.company)

    assert (report.created, report.updated, report.unchanged) == (0, 0, 1), report.errors
    assert Resident.objects.get().id_card == "11010519491231002X"


# ---------------------------------------------------------------- parking and readings


def test_parking_spaces_import_linked_to_units_by_label(unit):
    rows = [
        ["C001", "B1-001", "产权车位", "1-0101", "沪A12345", 12.5],
        ["C001", "B1-002", None, None, None, None],
        ["C001", "B1-003", None, "9-9999", None, None],
    ]
    bad = run("parking", xlsx("parking", rows), unit.community.company)
    assert [(e.row, e.header) for e in bad.errors] == [(5, "所属房屋")]

    report = run("parking", xlsx("parking", rows[:2]), unit.community.company)

    assert report.ok and report.created == 2
    space = ParkingSpace.objects.get(code="B1-001")
    assert (space.kind, space.unit_id, space.area_m2) == ("owned", unit.pk, Decimal("12.50"))


def test_meter_readings_create_meters_on_first_sight_and_reimport_once(unit):
    rows = [
        ["C001", "W-0101", "水表", "1-0101", "2024-01-31", 100.125, None],
        ["C001", "W-0101", "水表", "1-0101", "2024-02-29", 110.5, "否"],
        ["C001", "P-0101", "power", "1-0101", "2024-01-31", 2000, "是"],
    ]
    content = xlsx("readings", rows)
    report = run("readings", content, unit.community.company)
    again = run("readings", content, unit.community.company)

    assert report.ok and report.created == 3
    assert (again.created, again.unchanged) == (0, 3)
    assert Meter.objects.count() == 2
    assert MeterReading.objects.get(meter__serial_no="W-0101", read_date=date(2024, 1, 31)).value \
        == Decimal("100.125")
    assert MeterReading.objects.get(meter__serial_no="P-0101").is_replacement


def test_a_reading_for_a_known_meter_of_another_kind_is_refused(unit):
    run("readings", xlsx("readings", [["C001", "W-1", "水表", None, "2024-01-31", 1, None]]),
        unit.community.company)

    second = [["C001", "W-1", "电表", None, "2024-02-29", 2, None]]
    report = run("readings", xlsx("readings", second), unit.community.company)

    assert [(e.row, e.header) for e in report.errors] == [(3, "仪表类型")]


# ---------------------------------------------------------------- round trips


def test_units_parking_and_readings_exports_reimport_cleanly(unit):
    company = unit.community.company
    run("units", xlsx("units", UNIT_ROWS), company)
    run("parking", xlsx("parking", [["C001", "B1-001", "产权车位", "1-0101", "沪A1", 12.5]]),
        company)
    run("readings", xlsx("readings", [["C001", "W-1", "水表", "1-0102", "2024-01-31", 1.5, None]]),
        company)

    for kind, n in (("units", 3), ("parking", 1), ("readings", 1)):
        exported = export_build(kind=kind, company=company)
        report = run(kind, exported, company)
        assert report.ok, (kind, report.errors)
        assert (report.created, report.updated, report.unchanged) == (0, 0, n), kind


def test_a_units_export_imports_into_a_new_company_as_the_same_units(community):
    run("units", xlsx("units", UNIT_ROWS), community.company)
    exported = export_build(kind="units", company=community.company)
    fresh = make_community(make_company(), code="C001")

    report = run("units", exported, fresh.company)

    assert report.ok and report.created == 3
    fields = ["building__code", "room_no", "floor", "area_m2", "inner_area_m2", "unit_type",
              "state", "handover_date", "label"]
    mine = list(Unit.objects.filter(community=community).order_by("room_no").values(*fields))
    theirs = list(Unit.objects.filter(community=fresh).order_by("room_no").values(*fields))
    assert mine == theirs


# ---------------------------------------------------------------- opening balances


@pytest.fixture
def fee_item(unit):
    return make_fee_item(unit.community.company, code="WY", name="物业费", due_days=30)


OPENING_ROWS = [
    ["C001", "1", "0101", "WY", "2024-01-01", "2024-06-30", "537.00", None, None, "旧系统"],
    ["C001", "1", "0101", "WY", "2024-07-01", "2024-12-31", 537, None, "2025-01-15", None],
    ["C001", "1", "0101", None, None, None, None, "200.50", None, None],
    ["C001", "1", "0101", "WY", None, None, None, 100, None, None],
]


def test_opening_balances_post_balanced_entries_and_the_receivable_equals_the_bills(fee_item, unit):
    report = run("opening", xlsx("opening", OPENING_ROWS), unit.community.company)

    assert report.ok, report.errors
    bills = Bill.objects.filter(unit=unit, kind=Bill.Kind.OPENING).order_by("period_start")
    assert [(b.amount_fen, b.period_start, b.period_end, b.due_date) for b in bills] == [
        (53700, date(2024, 1, 1), date(2024, 7, 1), date(2024, 1, 31)),
        (53700, date(2024, 7, 1), date(2025, 1, 1), date(2025, 1, 15)),
    ]
    receivable = account_balance(account=AccountKind.RECEIVABLE, household_id=unit.pk)
    assert receivable == sum(b.amount_fen for b in bills) == 107400
    assert account_balance(account=AccountKind.PREPAID, household_id=unit.pk) == -30050
    assert account_balance(account=AccountKind.PREPAID, household_id=unit.pk,
                           fee_item_id=fee_item.pk) == -10000
    assert account_balance(account=AccountKind.OPENING_BALANCE,
                           company_id=unit.community.company_id) == -107400 + 30050
    assert unbalanced_entry_ids() == []
    assert JournalEntry.objects.filter(kind=JournalEntry.Kind.OPENING).count() == 1
    assert household_balances(company=unit.community.company)[0]["owed_fen"] == 107400


def test_the_same_opening_file_twice_posts_once(fee_item, unit):
    content = xlsx("opening", OPENING_ROWS)
    run("opening", content, unit.community.company)
    counts = (Bill.objects.count(), JournalEntry.objects.count(), JournalLine.objects.count())

    again = run("opening", content, unit.community.company, as_of=date(2026, 2, 1))

    assert again.ok and (again.created, again.unchanged) == (0, 4)
    assert (Bill.objects.count(), JournalEntry.objects.count(),
            JournalLine.objects.count()) == counts
    assert OpeningBalance.objects.count() == 4


def test_an_opening_balance_reimported_with_another_amount_is_an_error(fee_item, unit):
    run("opening", xlsx("opening", OPENING_ROWS), unit.community.company)
    changed = [list(r) for r in OPENING_ROWS]
    changed[0][6] = "600"

    report = run("opening", xlsx("opening", changed), unit.community.company)

    assert [(e.row, e.header) for e in report.errors] == [(3, "欠费金额(元)")]
    assert "537.00" in report.errors[0].message
    assert Bill.objects.count() == 2


def test_bad_opening_rows_are_reported_and_nothing_is_posted(fee_item, unit):
    rows = [
        ["C001", "1", "0101", "XX", "2024-01-01", "2024-06-30", 10, None, None, None],
        ["C001", "1", "0101", "WY", None, "2024-06-30", 10, None, None, None],
        ["C001", "1", "0101", "WY", "2024-01-01", "2024-06-30", 10, 5, None, None],
        ["C001", "1", "0101", "WY", "2024-01-01", "2024-06-30", "10.001", None, None, None],
        ["C001", "1", "0999", None, None, None, None, 5, None, None],
        ["C001", "1", "0101", "WY", "2024-01-01", "2024-06-30", 10, None, None, None],
        ["C001", "1", "0101", "WY", "2024-01-01", "2024-03-31", 10, None, None, None],
    ]
    report = run("opening", xlsx("opening", rows), unit.community.company)

    assert [(e.row, e.header) for e in report.errors] == [
        (3, "费项编号"), (4, "账期开始"), (5, "欠费金额(元)"), (6, "欠费金额(元)"), (7, "房号"),
        (9, "费项编号"),
    ]
    assert "第8行" in report.errors[-1].message
    assert Bill.objects.count() == 0 and JournalEntry.objects.count() == 0


def test_opening_balances_export_reimports_cleanly(fee_item, unit):
    run("opening", xlsx("opening", OPENING_ROWS), unit.community.company)

    exported = export_build(kind="opening", company=unit.community.company)
    report = run("opening", exported, unit.community.company)

    assert report.ok, report.errors
    assert (report.created, report.unchanged) == (0, 4)


def test_the_balances_export_lists_owed_and_prepaid_per_household(fee_item, unit):
    run("opening", xlsx("opening", OPENING_ROWS), unit.community.company)
    Resident.objects.create(unit=unit, name="张三", role="owner")

    ws = sheet(export_build(kind="balances", company=unit.community.company))

    assert [c.value for c in ws[3]] == [
        "C001", "阳光小区", "1", "0101", "1-0101", "张三", 1074, 300.5
    ]


def test_the_batch_service_refuses_a_user_without_the_admin_role_in_that_company(community):
    from wuye.accounts.selectors import AccessDenied
    from wuye.imports.services import batch_create
    from wuye.testing.factories import make_user

    outsider = make_user(make_company())

    with pytest.raises(AccessDenied):
        batch_create(user=outsider, kind="units", company_id=community.company_id,
                     file_name="u.xlsx", content=xlsx("units", UNIT_ROWS), dry_run=False)
    assert ImportBatch.objects.count() == 0


@pytest.mark.parametrize("kind", ["units", "residents", "readings", "opening"])
def test_an_import_makes_a_fixed_number_of_queries_however_many_rows(
    kind, fee_item, unit, django_assert_max_num_queries
):
    company = unit.community.company
    n = 300
    units = [["C001", "2", None, f"{i:04d}", 1, 80, None, None, None, None] for i in range(n)]
    run("units", xlsx("units", units), company)
    rows = {
        "units": units,
        "residents": [["C001", "2", f"{i:04d}", f"住户{i}", None, f"138{i:08d}", None, None,
                       None] for i in range(n)],
        "readings": [["C001", f"W{i}", "水表", f"2-{i:04d}", "2024-01-31", i, None]
                     for i in range(n)],
        "opening": [["C001", "2", f"{i:04d}", "WY", "2024-01-01", "2024-12-31", 10, None, None,
                     None] for i in range(n)],
    }[kind]
    content = xlsx(kind, [list(r) for r in rows])
    if kind == "units":
        content = xlsx(kind, [[*r[:5], 81, *r[6:]] for r in rows])  # every row an update

    with django_assert_max_num_queries(35):
        report = run(kind, content, company)

    assert report.ok, report.errors[:3]
    assert report.created + report.updated == n


def test_columns_are_found_by_english_header_in_any_order(community):
    import io

    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["room no", "floor area (m²)", "building code", "community code"])
    ws.append(["0101", 88, "1", "C001"])
    out = io.BytesIO()
    wb.save(out)

    report = run("units", out.getvalue(), community.company)

    assert report.ok, report.errors
    assert Unit.objects.get().area_m2 == Decimal("88.00")


def test_a_file_that_is_not_a_workbook_is_refused_with_a_file_level_error(community):
    report = run("units", b"room,area\n0101,88\n", community.company)

    assert [(e.row, e.message) for e in report.errors] == [
        (0, "无法读取文件: 请上传 Excel .xlsx 文件")
    ]
    assert Unit.objects.count() == 0


def test_a_file_missing_a_required_column_names_it(community):
    content = xlsx("units", [])
    import io

    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(content))
    wb.active.delete_cols(6)  # 建筑面积(m²)
    out = io.BytesIO()
    wb.save(out)

    report = run("units", out.getvalue(), community.company)

    assert "建筑面积(m²)" in report.errors[0].message


def test_a_write_conflict_with_a_concurrent_import_writes_nothing_and_says_retry(
    community, monkeypatch
):
    from django.db import IntegrityError

    from wuye.imports import services

    real = services.PLANNERS["units"]

    def conflicting(ctx, rows):
        plan = real(ctx, rows)
        inner = plan.apply

        def apply():
            inner()
            raise IntegrityError("duplicate key")

        plan.apply = apply
        return plan

    monkeypatch.setitem(services.PLANNERS, "units", conflicting)

    report = run("units", xlsx("units", UNIT_ROWS), community.company)

    assert [e.message_en for e in report.errors] == [
        "the data changed while importing; nothing was imported, try again"
    ]
    assert Unit.objects.count() == 0 and Building.objects.count() == 0


def test_optional_columns_left_out_of_a_file_leave_existing_fields_alone(unit):
    import io

    from openpyxl import Workbook

    company = unit.community.company
    rows = [["C001", "1", "0101", "张三", "业主", "13800138000", "11010519491231002X", "是", None]]
    run("residents", xlsx("residents", rows), company)
    wb = Workbook()
    ws = wb.active
    ws.append(["小区编号", "楼栋编号", "房号", "建筑面积(m²)", "姓名"])
    ws.append(["C001", "1", "0101", 95, "张三"])
    out = io.BytesIO()
    wb.save(out)

    units = run("units", out.getvalue(), company)
    residents = run("residents", out.getvalue(), company)

    assert (units.updated, residents.unchanged) == (1, 1)
    unit.refresh_from_db()
    assert unit.area_m2 == Decimal("95.00")
    assert unit.handover_date == date(2020, 1, 1)  # no 交房日期 column: kept
    zhang = Resident.objects.get()
    assert (zhang.id_card, zhang.phone, zhang.is_primary) == (
        "11010519491231002X", "13800138000", True
    )


def test_an_arrear_for_a_period_wuye_already_billed_is_refused(fee_item, unit):
    Bill.objects.create(
        company=unit.community.company, community=unit.community, unit=unit, fee_item=fee_item,
        period_start=date(2024, 6, 1), period_end=date(2024, 7, 1), amount_fen=22375,
        due_date=date(2024, 7, 1), issued_on=date(2024, 6, 1),
    )

    report = run("opening", xlsx("opening", OPENING_ROWS[:2]), unit.community.company)

    assert [(e.row, e.header) for e in report.errors] == [(3, "账期开始")]
    assert "2024-06-01~2024-06-30" in report.errors[0].message
    assert not OpeningBalance.objects.exists()
