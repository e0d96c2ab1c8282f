import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from wuye.accounts.models import Role
from wuye.core.models import AuditEvent, Job
from wuye.estates.models import Unit
from wuye.imports.models import ImportBatch
from wuye.imports.tests.helpers import sheet, xlsx
from wuye.testing.factories import make_community, make_company, make_user

pytestmark = pytest.mark.django_db

ROWS = [
    ["C001", "1", "1号楼", "0101", 1, 89.5, None, "住宅", "已入住", "2020-06-30"],
    ["C001", "1", "1号楼", "0102", 1, 90, None, "住宅", "已入住", None],
]


@pytest.fixture
def community():
    return make_community(make_company(), code="C001")


@pytest.fixture
def admin_client(client, community):
    client.force_login(make_user(community.company, role=Role.ADMIN))
    return client


def upload(client, company, content, *, dry_run=False, kind="units"):
    data = {
        "kind": kind,
        "company": company.pk,
        "file": SimpleUploadedFile("房屋.xlsx", content),
    }
    if dry_run:
        data["dry_run"] = "on"
    return client.post(reverse("imports:upload"), data)


def test_the_index_page_offers_the_upload_form_templates_and_exports(admin_client, community):
    response = admin_client.get(reverse("imports:index"))

    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="upload-form"' in html
    assert reverse("imports:template", args=["residents"]) in html
    assert f"{reverse('imports:export', args=['balances'])}?company={community.company_id}" in html


def test_an_upload_runs_as_a_background_job_and_imports_the_file(
    admin_client, community, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(admin_client, community.company, xlsx("units", ROWS))

    batch = ImportBatch.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("imports:batch", args=[batch.pk])
    assert batch.status == ImportBatch.Status.IMPORTED and batch.created_count == 2
    assert Unit.objects.count() == 2
    assert Job.objects.get(pk=batch.job_id).status == Job.Status.SUCCEEDED
    assert not batch.source_file  # the upload is deleted once processed; its digest stays
    assert batch.sha256
    page = admin_client.get(response.url).content.decode()
    assert "已导入" in page


def test_a_dry_run_upload_writes_nothing(
    admin_client, community, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client, community.company, xlsx("units", ROWS), dry_run=True)

    assert ImportBatch.objects.get().status == ImportBatch.Status.VALIDATED
    assert Unit.objects.count() == 0


def test_a_bad_upload_shows_each_error_and_offers_the_marked_workbook(
    admin_client, community, django_capture_on_commit_callbacks
):
    rows = [ROWS[0], ["C001", "1", None, "0102", 1, "abc", None, None, None, None]]
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(admin_client, community.company, xlsx("units", rows))

    batch = ImportBatch.objects.get()
    page = admin_client.get(response.url).content.decode()
    assert batch.status == ImportBatch.Status.REJECTED
    assert "建筑面积(m²)" in page and "不是数字" in page
    errors = admin_client.get(reverse("imports:batch_errors", args=[batch.pk]))
    assert errors.status_code == 200
    ws = sheet(errors.content)
    assert ws.cell(row=4, column=6).comment is not None
    assert Unit.objects.count() == 0


def test_a_user_of_company_a_cannot_import_into_company_b(client, community):
    other = make_community(make_company(), code="C001")
    client.force_login(make_user(community.company, role=Role.ADMIN))

    response = upload(client, other.company, xlsx("units", ROWS))

    assert response.status_code == 400
    assert ImportBatch.objects.count() == 0 and Unit.objects.count() == 0


def test_a_cashier_cannot_import_even_into_their_own_company(client, community):
    client.force_login(make_user(community.company, role=Role.CASHIER))

    response = upload(client, community.company, xlsx("units", ROWS))

    assert response.status_code == 400
    assert ImportBatch.objects.count() == 0


def test_a_user_cannot_see_another_companys_import_batch(
    client, admin_client, community, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client, community.company, xlsx("units", ROWS))
    batch = ImportBatch.objects.get()
    client.force_login(make_user(make_company(), role=Role.ADMIN))

    assert client.get(reverse("imports:batch", args=[batch.pk])).status_code == 403
    assert client.get(reverse("imports:batch_errors", args=[batch.pk])).status_code == 403


def test_templates_download_as_xlsx(admin_client):
    response = admin_client.get(reverse("imports:template", args=["opening"]))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert sheet(response.content)["A1"].value == "小区编号"


def test_exports_are_limited_to_the_users_companies(client, admin_client, community):
    url = reverse("imports:export", args=["units"]) + f"?company={community.company_id}"
    assert admin_client.get(url).status_code == 200
    assert AuditEvent.objects.filter(action="export", company=community.company).count() == 1

    client.force_login(make_user(make_company(), role=Role.ADMIN))
    assert client.get(url).status_code == 403


def test_the_pages_and_error_reports_speak_english_when_asked(
    admin_client, community, django_capture_on_commit_callbacks
):
    rows = [["C001", "1", None, "0102", 1, "abc", None, None, None, None]]
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(admin_client, community.company, xlsx("units", rows))

    admin_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"  # the 中文/English switch
    index = admin_client.get(reverse("imports:index"))
    page = admin_client.get(response.url).content.decode()

    assert "Download templates" in index.content.decode()
    assert "floor area (m²)" in page and "not a number: abc" in page


def test_the_admin_lists_import_batches_and_opening_balances_read_only(client, community):
    from wuye.accounts.models import User

    client.force_login(User.objects.create_superuser("root-h3", password="pw-for-tests-1"))

    for model in ("importbatch", "openingbalance"):
        assert client.get(f"/admin/imports/{model}/").status_code == 200
        assert client.get(f"/admin/imports/{model}/add/").status_code == 403


def test_a_queued_import_shows_its_progress_and_polls_until_done(admin_client, community):
    # No on-commit callbacks run here: the batch stays queued, as while a worker is busy.
    upload(admin_client, community.company, xlsx("units", ROWS))
    batch = ImportBatch.objects.get()
    Job.objects.filter(pk=batch.job_id).update(progress_done=1000, progress_total=4000)

    partial = admin_client.get(reverse("imports:batch", args=[batch.pk]), HTTP_HX_REQUEST="true")

    html = partial.content.decode()
    assert batch.status == ImportBatch.Status.QUEUED
    assert 'hx-trigger="every 1s"' in html and "1000 / 4000" in html and "<html" not in html
