"""Admin for companies, communities, buildings, units, residents, parking and meters.

Residents show only the masked ID-card number; a new number is typed into a write-only
field and stored encrypted, masked and hashed by ``estates.services.id_card_fields``.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from wuye.core.admin import CompanyScopedAdmin, CompanyScopedInline
from wuye.estates.models import (
    Building,
    Community,
    Company,
    Meter,
    MeterReading,
    ParkingSpace,
    Resident,
    Unit,
)
from wuye.estates.services import id_card_fields


@admin.register(Company)
class CompanyAdmin(CompanyScopedAdmin):
    list_display = ("name", "short_name", "uscc", "bank_name", "bank_account_no", "phone")
    search_fields = ("name", "short_name", "uscc")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A new company is a new tenant of the platform: superusers only.
        return bool(request.user.is_superuser)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)


@admin.register(Community)
class CommunityAdmin(CompanyScopedAdmin):
    list_display = ("code", "name", "company", "phone", "surplus_policy")
    list_filter = ("company",)
    search_fields = ("code", "name", "address")
    list_select_related = ("company",)


@admin.register(Building)
class BuildingAdmin(CompanyScopedAdmin):
    list_display = ("code", "name", "community", "floors")
    list_filter = ("community",)
    search_fields = ("code", "name")
    list_select_related = ("community",)


class ResidentForm(forms.ModelForm):
    new_id_card = forms.CharField(
        label=_("身份证号"),
        required=False,
        help_text=_("仅在录入或更换时填写；保存后只显示脱敏号码"),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    class Meta:
        model = Resident
        fields = ("unit", "name", "role", "phone", "is_primary", "move_in_date")

    def clean_new_id_card(self) -> dict[str, str] | None:
        value = self.cleaned_data.get("new_id_card", "").strip()
        if not value:
            return None
        try:
            return id_card_fields(value)
        except ValidationError as exc:
            raise ValidationError(exc.messages) from exc

    def save(self, commit: bool = True) -> Resident:
        fields = self.cleaned_data.get("new_id_card")
        if fields:
            for key, val in fields.items():
                setattr(self.instance, key, val)
        return super().save(commit=commit)


class ResidentInline(CompanyScopedInline):
    model = Resident
    form = ResidentForm
    fields = (
        "name",
        "role",
        "phone",
        "is_primary",
        "move_in_date",
        "id_card_masked",
        "new_id_card",
    )
    readonly_fields = ("id_card_masked",)


class ParkingInline(CompanyScopedInline):
    model = ParkingSpace
    fields = ("code", "kind", "plate_no", "area_m2")
    fk_name = "unit"


@admin.register(Unit)
class UnitAdmin(CompanyScopedAdmin):
    list_display = (
        "label",
        "community",
        "building",
        "floor",
        "area_m2",
        "unit_type",
        "state",
        "handover_date",
    )
    list_filter = ("community", "unit_type", "state")
    search_fields = (
        "label",
        "room_no",
        "residents__name",
        "residents__phone",
        "parking_spaces__plate_no",
    )
    list_select_related = ("community", "building")
    autocomplete_fields = ("building",)
    inlines = [ResidentInline, ParkingInline]

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> Any:
        qs, _dup = super().get_search_results(request, queryset, search_term)
        return qs.distinct(), False


@admin.register(Resident)
class ResidentAdmin(CompanyScopedAdmin):
    form = ResidentForm
    list_display = ("name", "unit", "role", "phone", "id_card_masked", "is_primary")
    list_filter = ("role", "unit__community")
    search_fields = ("name", "phone", "unit__label")
    readonly_fields = ("id_card_masked",)
    fields = (
        "unit",
        "name",
        "role",
        "phone",
        "id_card_masked",
        "new_id_card",
        "is_primary",
        "move_in_date",
    )
    autocomplete_fields = ("unit",)
    list_select_related = ("unit",)


@admin.register(ParkingSpace)
class ParkingSpaceAdmin(CompanyScopedAdmin):
    list_display = ("code", "community", "kind", "unit", "plate_no", "area_m2")
    list_filter = ("community", "kind")
    search_fields = ("code", "plate_no", "unit__label")
    autocomplete_fields = ("unit",)
    list_select_related = ("community", "unit")


class MeterReadingInline(CompanyScopedInline):
    model = MeterReading
    fields = ("read_date", "value", "is_replacement")
    ordering = ("-read_date",)


@admin.register(Meter)
class MeterAdmin(CompanyScopedAdmin):
    list_display = ("serial_no", "kind", "community", "unit", "multiplier")
    list_filter = ("community", "kind")
    search_fields = ("serial_no", "unit__label")
    autocomplete_fields = ("unit",)
    list_select_related = ("community", "unit")
    inlines = [MeterReadingInline]


@admin.register(MeterReading)
class MeterReadingAdmin(CompanyScopedAdmin):
    list_display = ("meter", "read_date", "value", "is_replacement")
    list_filter = ("meter__kind", "meter__community")
    search_fields = ("meter__serial_no",)
    date_hierarchy = "read_date"
    autocomplete_fields = ("meter",)
    list_select_related = ("meter",)
