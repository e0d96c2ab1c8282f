"""Admin for jobs and the audit trail, and the company scoping every Wuye admin uses.

A platform superuser sees everything. Any other staff user sees only the companies where
they hold the administrator role: lists, change forms and the choices offered in foreign-key
and many-to-many fields are all narrowed, and another company's object id is a 404.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest

from wuye.accounts.models import Membership, Role
from wuye.core.models import AuditEvent, Job

# Path from each model to its company, for models that other admins offer as choices.
COMPANY_PATHS: dict[str, str] = {
    "estates.company": "pk",
    "estates.community": "company",
    "estates.building": "community__company",
    "estates.unit": "community__company",
    "estates.resident": "unit__community__company",
    "estates.parkingspace": "community__company",
    "estates.meter": "community__company",
    "estates.meterreading": "meter__community__company",
    "merchants.merchant": "company",
    "merchants.feerate": "merchant__company",
    "merchants.merchantdocument": "company",
    "billing.feeitem": "company",
    "billing.feestandard": "community__company",
    "billing.pricetier": "standard__community__company",
    "billing.billingrun": "community__company",
    "billing.bill": "company",
    "billing.allocation": "bill__company",
    "billing.waiver": "bill__company",
    "ledger.journalentry": "company",
    "ledger.journalline": "entry__company",
    "core.job": "company",
    "core.auditevent": "company",
    "accounts.membership": "company",
    "accounts.user": "memberships__company",
    "imports.importbatch": "company",
    "imports.openingbalance": "company",
}


def admin_company_ids(user: Any) -> list[int] | None:
    """Companies whose data ``user`` may manage in the admin; ``None`` means all."""
    if user.is_superuser:
        return None
    cached = getattr(user, "_wuye_admin_company_ids", None)
    if cached is None:
        cached = list(
            Membership.objects.filter(user=user, role=Role.ADMIN)
            .values_list("company_id", flat=True)
            .distinct()
        )
        user._wuye_admin_company_ids = cached
    return cached


def scope_to_user(qs: QuerySet[Any], user: Any) -> QuerySet[Any]:
    """Narrow ``qs`` to the companies ``user`` administers (unchanged for superusers).

    A model Wuye does not know how to scope gives nothing to non-superusers.
    """
    ids = admin_company_ids(user)
    if ids is None:
        return qs
    path = COMPANY_PATHS.get(qs.model._meta.label_lower)
    if path is None:
        return qs.none()
    field = "pk__in" if path == "pk" else f"{path}__in"
    qs = qs.filter(**{field: ids})
    return qs.distinct() if "memberships" in path else qs


class CompanyScopedAdmin(admin.ModelAdmin):
    """A ModelAdmin whose rows and choices are limited to the staff user's companies."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return scope_to_user(super().get_queryset(request), request.user)

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("no such object in your companies")
        return obj

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        _scope_choices(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        _scope_choices(db_field, request, kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class CompanyScopedInline(admin.TabularInline):
    """An inline whose rows and choices are limited to the staff user's companies."""

    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return scope_to_user(super().get_queryset(request), request.user)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        _scope_choices(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        _scope_choices(db_field, request, kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


def _scope_choices(db_field: Any, request: HttpRequest, kwargs: dict[str, Any]) -> None:
    model: type[Model] = db_field.related_model
    if model._meta.label_lower in COMPANY_PATHS and "queryset" not in kwargs:
        kwargs["queryset"] = scope_to_user(model._default_manager.all(), request.user)


class ReadOnlyAdmin(CompanyScopedAdmin):
    """Viewable, never added, changed or deleted through the admin."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "kind",
        "title",
        "company",
        "status",
        "progress_done",
        "progress_total",
        "created_by",
        "created_at",
        "finished_at",
    )
    list_filter = ("status", "kind", "company")
    search_fields = ("title", "message")
    date_hierarchy = "created_at"
    list_select_related = ("company", "created_by")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor", "company", "action", "object_type", "object_id")
    list_filter = ("action", "object_type", "company")
    search_fields = ("object_id", "action")
    date_hierarchy = "at"
    list_select_related = ("actor", "company")
