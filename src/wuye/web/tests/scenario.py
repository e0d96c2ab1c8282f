"""A small estate per company for the screen and isolation tests.

Bills are created directly: these tests are about what the screens show and to whom, not about
how bills come to be (the billing engine's own tests cover that, with their ledger entries).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from wuye.accounts.models import Role, User
from wuye.billing.models import Bill, BillingRun, FeeItem
from wuye.core.models import Job
from wuye.estates.models import Building, Community, Company, ParkingSpace, Resident, Unit
from wuye.merchants.models import Channel, FeeRate, Merchant, MerchantDocument
from wuye.testing.factories import (
    make_building,
    make_community,
    make_company,
    make_fee_item,
    make_unit,
    make_user,
)


@dataclass
class Estate:
    company: Company
    community: Community
    building: Building
    unit: Unit
    resident: Resident
    parking: ParkingSpace
    fee_item: FeeItem
    bill: Bill
    run: BillingRun
    job: Job
    merchant: Merchant
    document: MerchantDocument
    admin: User


def make_estate(*, tag: str, today: date, merchant_no: str) -> Estate:
    """A company with one community, building, unit (owner, plate), bill, run, job, merchant.

    ``tag`` makes names unique and searchable (``业主<tag>``, plate ``沪A<tag>``).
    """
    company = make_company(name=f"{tag}物业服务有限公司")
    community = make_community(company, name=f"{tag}花园")
    building = make_building(community, code="1", name="1号楼")
    unit = make_unit(building, room_no="101", label=f"1-101{tag}")
    resident = Resident.objects.create(
        unit=unit, name=f"业主{tag}", phone="13800138000", id_card_masked="110101********1234"
    )
    parking = ParkingSpace.objects.create(
        community=community, code=f"P{tag}", unit=unit, plate_no=f"沪A{tag}"
    )
    fee_item = make_fee_item(company, name="物业费")
    month = today.replace(day=1)
    run = BillingRun.objects.create(
        community=community,
        period_start=month,
        period_end=(month + timedelta(days=32)).replace(day=1),
        status=BillingRun.Status.DONE,
        bills_created=1,
        total_fen=22375,
    )
    bill = Bill.objects.create(
        company=company,
        community=community,
        unit=unit,
        fee_item=fee_item,
        period_start=month,
        period_end=run.period_end,
        amount_fen=22375,
        paid_fen=10000,
        due_date=month + timedelta(days=9),
        issued_on=month,
        run=run,
    )
    job = Job.objects.create(
        kind="billing_run",
        title=f"出账 {community.name}",
        company=company,
        status=Job.Status.SUCCEEDED,
        result={"run_id": run.pk},
    )
    merchant = Merchant.objects.create(
        company=company,
        channel=Channel.WECHAT,
        name=f"{tag}物业",
        merchant_no=merchant_no,
        bank_name="招商银行",
        bank_account_name=company.name,
        bank_account_no="121900001234",
    )
    FeeRate.objects.create(
        merchant=merchant, card_type="any", rate_ppm=6000, effective_from=date(2020, 1, 1)
    )
    document = MerchantDocument.objects.create(
        company=company,
        merchant=merchant,
        kind=MerchantDocument.Kind.ACQUIRING_AGREEMENT,
        title=f"{tag}支付服务协议",
        expires_on=today + timedelta(days=20),
    )
    admin = make_user(company, Role.ADMIN, username=f"admin-{tag}")
    return Estate(
        company,
        community,
        building,
        unit,
        resident,
        parking,
        fee_item,
        bill,
        run,
        job,
        merchant,
        document,
        admin,
    )


def login(client: Any, user: User) -> Any:
    client.force_login(user)
    return client
