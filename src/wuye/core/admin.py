"""Admin for jobs and the audit trail, and the company scoping every Wuye admin uses.

A platform superuser sees everything. Any other staff user sees only the companies where
they hold the administrator role: lists, change forms and the choices offered in foreign-key
and many-to-many fields are all narrowed, and another company's object id is a 404.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import NotRelationField, get_fields_from_path
from django.core.exceptions import FieldDoesNotExist
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


def is_company_admin(user: Any) -> bool:
    """Whether ``user`` holds the administrator role in some company (or is a superuser)."""
    if not (user.is_active and user.is_staff):
        return False
    ids = admin_company_ids(user)
    return ids is None or bool(ids)


class RolePermissions:
    """Model permissions from the administrator role, not only from Django's permission table.

    A company administrator may view, add, change and delete what the admin shows them (their
    own companies' rows); subclasses take away what must stay read-only.
    """

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_company_admin(request.user) or super().has_module_permission(request)  # type: ignore[misc]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_company_admin(request.user) or super().has_view_permission(request, obj)  # type: ignore[misc]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return is_company_admin(request.user) or super().has_add_permission(request, *args)  # type: ignore[misc]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_company_admin(request.user) or super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_company_admin(request.user) or super().has_delete_permission(request, obj)  # type: ignore[misc]


class ScopedRelatedFilter(admin.RelatedFieldListFilter):
    """A foreign-key filter that offers only the user's companies' rows, titled in Chinese."""

    def __init__(self, field: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().__init__(field, request, *args, **kwargs)
        if str(field.verbose_name) == field.name.replace("_", " "):
            self.title = field.related_model._meta.verbose_name

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> Any:
        qs = scope_to_user(field.related_model._default_manager.all(), request.user)
        return [(obj.pk, str(obj)) for obj in qs[:500]]


def _unnamed_relation(model: type[Model], path: str) -> Any:
    """The relation at ``path`` if it is a foreign key without a verbose name of its own."""
    try:
        field = get_fields_from_path(model, path)[-1]
    except (FieldDoesNotExist, NotRelationField):  # not a field path: leave it alone
        return None
    if not getattr(field, "is_relation", False) or field.related_model is None:
        return None
    return field


def _fk_column(name: str, field: Any) -> Any:
    def column(obj: Any) -> Any:
        return getattr(obj, name)

    column.short_description = (  # type: ignore[attr-defined]
        field.related_model._meta.verbose_name
        if str(field.verbose_name) == field.name.replace("_", " ")
        else field.verbose_name
    )
    column.admin_order_field = name  # type: ignore[attr-defined]
    column.__name__ = name
    return column


class CompanyScopedAdmin(RolePermissions, admin.ModelAdmin):
    """A ModelAdmin whose rows and choices are limited to the staff user's companies."""

    def get_list_filter(self, request: HttpRequest) -> Any:
        out: list[Any] = []
        for item in super().get_list_filter(request):
            if isinstance(item, str) and _unnamed_relation(self.model, item) is not None:
                out.append((item, ScopedRelatedFilter))
            else:
                out.append(item)
        return out

    def get_list_display(self, request: HttpRequest) -> Any:
        out: list[Any] = []
        for item in super().get_list_display(request):
            if isinstance(item, str) and "__" not in item:
                field = _unnamed_relation(self.model, item)
                if field is not None:
                    out.append(_fk_column(item, field))
                    continue
            out.append(item)
        return out

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


class CompanyScopedInline(RolePermissions, admin.TabularInline):
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
    """Viewable, never added, changed or deleted through the admin.

    These are the big, append-mostly tables (bills, journal, audit): the filtered list does not
    also count the whole table.
    """

    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
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
