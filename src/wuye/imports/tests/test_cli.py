import pytest
from django.core.management import CommandError, call_command

from wuye.estates.models import Unit
from wuye.imports.tests.helpers import sheet, xlsx
from wuye.testing.factories import make_community, make_company

pytestmark = pytest.mark.django_db

ROWS = [["C001", "1", None, "0101", 1, 89.5, None, None, None, None]]


@pytest.fixture
def community():
    return make_community(make_company(), code="C001")


def test_the_cli_writes_a_template(tmp_path):
    out = tmp_path / "t.xlsx"

    call_command("import", "template", "units", "--out", str(out))

    assert sheet(out.read_bytes())["A1"].value == "小区编号"


def test_the_cli_imports_by_uscc_and_a_dry_run_writes_nothing(tmp_path, community, capsys):
    f = tmp_path / "units.xlsx"
    f.write_bytes(xlsx("units", ROWS))

    call_command("import", "units", str(f), "--company", community.company.uscc, "--dry-run")
    assert Unit.objects.count() == 0
    call_command("import", "units", str(f), "--company", str(community.company_id))

    assert Unit.objects.count() == 1
    assert "新增 1" in capsys.readouterr().out


def test_the_cli_reports_bad_rows_and_writes_the_error_workbook_next_to_the_file(
    tmp_path, community, capsys
):
    f = tmp_path / "units.xlsx"
    f.write_bytes(xlsx("units", [*ROWS, ["C001", "1", None, "0102", 1, "x", None, None, None,
                                          None]]))

    with pytest.raises(CommandError, match="1 处错误"):
        call_command("import", "units", str(f), "--company", community.company.uscc)

    assert "第4行 [建筑面积(m²)]" in capsys.readouterr().err
    marked = sheet((tmp_path / "units.errors.xlsx").read_bytes())
    assert marked.cell(row=4, column=6).comment is not None
    assert Unit.objects.count() == 0


def test_the_cli_exports_what_it_imported(tmp_path, community):
    f = tmp_path / "units.xlsx"
    f.write_bytes(xlsx("units", ROWS))
    call_command("import", "units", str(f), "--company", community.company.uscc)
    out = tmp_path / "export.xlsx"

    call_command("export", "units", "--company", community.company.uscc, "--out", str(out))

    assert [c.value for c in sheet(out.read_bytes())[3]][:4] == ["C001", "1", "1号楼", "0101"]
