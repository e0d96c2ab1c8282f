"""What is billed: companies (the merchant of record), communities, buildings, units,
residents, parking spaces and meters with their readings.

A *unit* is the billing account (the household, 户): bills, payments and the prepaid balance
hang off it. Residents are the people attached to it.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from wuye.core.crypto import EncryptedTextField
from wuye.estates.validators import validate_id_card, validate_phone, validate_uscc


class Company(models.Model):
    """A property-management company: the merchant of record with its payment institutions."""

    name = models.CharField(_("公司名称"), max_length=120)
    short_name = models.CharField(_("简称"), max_length=40, blank=True)
    uscc = models.CharField(
        _("统一社会信用代码"), max_length=18, unique=True, validators=[validate_uscc]
    )
    bank_name = models.CharField(_("结算开户行"), max_length=120, blank=True)
    bank_account_name = models.CharField(_("结算账户名"), max_length=120, blank=True)
    bank_account_no = models.CharField(_("结算账号"), max_length=40, blank=True)
    phone = models.CharField(_("联系电话"), max_length=20, blank=True)
    address = models.CharField(_("地址"), max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("物业公司")
        verbose_name_plural = _("物业公司")

    def __str__(self) -> str:
        return self.short_name or self.name


class Community(models.Model):
    """A residential community (小区/项目) run by a company."""

    class SurplusPolicy(models.TextChoices):
        PREPAY = "prepay", _("转为预存")
        REFUND = "refund", _("原路退款")

    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="communities")
    code = models.CharField(_("编号"), max_length=20)
    name = models.CharField(_("小区名称"), max_length=100)
    address = models.CharField(_("地址"), max_length=200, blank=True)
    phone = models.CharField(_("服务中心电话"), max_length=20, blank=True)
    surplus_policy = models.CharField(
        _("重复/多付款处理"),
        max_length=10,
        choices=SurplusPolicy.choices,
        default=SurplusPolicy.PREPAY,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "code"], name="uniq_community_code")
        ]
        ordering = ["company_id", "code"]
        verbose_name = _("小区")
        verbose_name_plural = _("小区")

    def __str__(self) -> str:
        return self.name


class Building(models.Model):
    community = models.ForeignKey(Community, on_delete=models.PROTECT, related_name="buildings")
    code = models.CharField(_("楼栋编号"), max_length=20)
    name = models.CharField(_("楼栋名称"), max_length=60)
    floors = models.PositiveSmallIntegerField(_("层数"), null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["community", "code"], name="uniq_building_code")
        ]
        ordering = ["community_id", "code"]
        verbose_name = _("楼栋")
        verbose_name_plural = _("楼栋")

    def __str__(self) -> str:
        return self.name


class Unit(models.Model):
    """A unit (房屋) and the household account (户) that is billed for it."""

    class Type(models.TextChoices):
        RESIDENTIAL = "residential", _("住宅")
        COMMERCIAL = "commercial", _("商铺")
        PARKING = "parking", _("车位")
        OTHER = "other", _("其他")

    class State(models.TextChoices):
        OCCUPIED = "occupied", _("已入住")
        VACANT = "vacant", _("空置")
        UNSOLD = "unsold", _("未售")

    community = models.ForeignKey(Community, on_delete=models.PROTECT, related_name="units")
    building = models.ForeignKey(Building, on_delete=models.PROTECT, related_name="units")
    room_no = models.CharField(_("房号"), max_length=20)
    floor = models.SmallIntegerField(_("楼层"), null=True, blank=True)
    area_m2 = models.DecimalField(_("建筑面积(m²)"), max_digits=10, decimal_places=2)
    inner_area_m2 = models.DecimalField(
        _("套内面积(m²)"), max_digits=10, decimal_places=2, null=True, blank=True
    )
    unit_type = models.CharField(
        _("房屋类型"), max_length=12, choices=Type.choices, default=Type.RESIDENTIAL
    )
    state = models.CharField(
        _("状态"), max_length=10, choices=State.choices, default=State.OCCUPIED
    )
    handover_date = models.DateField(_("交房日期"), null=True, blank=True)
    # "1-2-301": building code, and room; what cashiers type and receipts print.
    label = models.CharField(_("房屋编号"), max_length=60, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["building", "room_no"], name="uniq_unit_room"),
            models.CheckConstraint(condition=Q(area_m2__gte=0), name="unit_area_not_negative"),
        ]
        indexes = [models.Index(fields=["community", "label"])]
        ordering = ["community_id", "label"]
        verbose_name = _("房屋")
        verbose_name_plural = _("房屋")

    def __str__(self) -> str:
        return self.label


class Resident(models.Model):
    """A person attached to a unit: its owner or a tenant."""

    class Role(models.TextChoices):
        OWNER = "owner", _("业主")
        TENANT = "tenant", _("租户")
        FAMILY = "family", _("家属")

    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="residents")
    name = models.CharField(_("姓名"), max_length=60, db_index=True)
    role = models.CharField(_("身份"), max_length=10, choices=Role.choices, default=Role.OWNER)
    phone = models.CharField(
        _("手机号"), max_length=20, blank=True, validators=[validate_phone], db_index=True
    )
    # The ID-card number is kept encrypted; the mask is what screens show, and the keyed hash
    # finds duplicates on import without decrypting.
    id_card = EncryptedTextField(_("身份证号"), blank=True, validators=[validate_id_card])
    id_card_masked = models.CharField(_("身份证号(脱敏)"), max_length=18, blank=True)
    id_card_hash = models.CharField(max_length=64, blank=True, db_index=True)
    is_primary = models.BooleanField(_("主要联系人"), default=True)
    move_in_date = models.DateField(_("入住日期"), null=True, blank=True)

    class Meta:
        ordering = ["unit_id", "-is_primary", "id"]
        verbose_name = _("住户")
        verbose_name_plural = _("住户")

    def __str__(self) -> str:
        return f"{self.name} ({self.get_role_display()})"


class ParkingSpace(models.Model):
    class Kind(models.TextChoices):
        OWNED = "owned", _("产权车位")
        RENTED = "rented", _("租赁车位")
        TEMPORARY = "temporary", _("临时车位")

    community = models.ForeignKey(
        Community, on_delete=models.PROTECT, related_name="parking_spaces"
    )
    code = models.CharField(_("车位号"), max_length=20)
    kind = models.CharField(_("类型"), max_length=10, choices=Kind.choices, default=Kind.RENTED)
    unit = models.ForeignKey(
        Unit,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="parking_spaces",
        verbose_name=_("所属房屋"),
    )
    plate_no = models.CharField(_("车牌号"), max_length=12, blank=True, db_index=True)
    area_m2 = models.DecimalField(
        _("面积(m²)"), max_digits=8, decimal_places=2, null=True, blank=True
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["community", "code"], name="uniq_parking_code")
        ]
        ordering = ["community_id", "code"]
        verbose_name = _("车位")
        verbose_name_plural = _("车位")

    def __str__(self) -> str:
        return self.code


class Meter(models.Model):
    class Kind(models.TextChoices):
        WATER = "water", _("水表")
        POWER = "power", _("电表")

    community = models.ForeignKey(Community, on_delete=models.PROTECT, related_name="meters")
    # A unit's own meter; a shared (公摊) meter has no unit and is split across units.
    unit = models.ForeignKey(
        Unit, null=True, blank=True, on_delete=models.PROTECT, related_name="meters"
    )
    kind = models.CharField(_("类型"), max_length=10, choices=Kind.choices)
    serial_no = models.CharField(_("表号"), max_length=40)
    multiplier = models.PositiveIntegerField(_("倍率"), default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["community", "serial_no"], name="uniq_meter_serial")
        ]
        verbose_name = _("仪表")
        verbose_name_plural = _("仪表")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.serial_no}"


class MeterReading(models.Model):
    """A reading on a date; consumption is the difference from the previous one."""

    meter = models.ForeignKey(Meter, on_delete=models.CASCADE, related_name="readings")
    read_date = models.DateField(_("抄表日期"))
    value = models.DecimalField(_("读数"), max_digits=14, decimal_places=3)
    is_replacement = models.BooleanField(
        _("换表起始读数"), default=False, help_text=_("新表的起始读数，与上次读数不计差")
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["meter", "read_date"], name="uniq_meter_reading"),
            models.CheckConstraint(condition=Q(value__gte=0), name="reading_not_negative"),
        ]
        ordering = ["meter_id", "read_date"]
        verbose_name = _("抄表读数")
        verbose_name_plural = _("抄表读数")

    def __str__(self) -> str:
        return f"{self.meter} {self.read_date} {self.value}"
