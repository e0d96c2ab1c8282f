"""Admin for users and their role memberships, scoped to the administrator's companies.

A company administrator can manage the users who hold a role in their companies, but cannot
make anyone a superuser or hand out permissions directly: roles are the way in.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from wuye.accounts.models import Membership, User
from wuye.accounts.services import user_admin_access_sync
from wuye.core.admin import CompanyScopedAdmin, CompanyScopedInline, admin_company_ids


class MembershipInline(CompanyScopedInline):
    model = Membership
    fields = ("company", "role", "communities")
    filter_horizontal = ("communities",)
    verbose_name = _("角色授权")


@admin.register(User)
class UserAdmin(CompanyScopedAdmin, BaseUserAdmin):
    list_display = ("username", "display_name", "phone", "is_active", "is_staff", "last_login")
    list_filter = ("is_active", "is_staff", "memberships__role", "memberships__company")
    search_fields = ("username", "display_name", "phone", "email")
    inlines = [MembershipInline]
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("个人信息"), {"fields": ("display_name", "phone", "email")}),
        (_("权限"), {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        (_("时间"), {"fields": ("last_login", "date_joined")}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        ro = ["last_login", "date_joined"]
        if not request.user.is_superuser:
            ro += ["is_staff", "is_superuser", "groups"]
        return ro

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Someone who also holds a role in a company this administrator does not run can only
        # be viewed: changing their password would open that other company's data.
        if obj is not None and not _only_in_admin_companies(request.user, obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not _only_in_admin_companies(request.user, obj):
            return False
        return super().has_delete_permission(request, obj)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        user_admin_access_sync(form.instance)


def _only_in_admin_companies(admin_user: Any, user: Any) -> bool:
    ids = admin_company_ids(admin_user)
    if ids is None:
        return True
    if user.is_superuser:
        return False
    return not Membership.objects.filter(user=user).exclude(company_id__in=ids).exists()


@admin.register(Membership)
class MembershipAdmin(CompanyScopedAdmin):
    list_display = ("user", "company", "role")
    list_filter = ("role", "company")
    search_fields = ("user__username", "user__display_name")
    filter_horizontal = ("communities",)
    list_select_related = ("user", "company")
    autocomplete_fields = ("user",)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        user_admin_access_sync(form.instance.user)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        user = obj.user
        super().delete_model(request, obj)
        user_admin_access_sync(user)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        users = list({m.user for m in queryset.select_related("user")})
        super().delete_queryset(request, queryset)
        for user in users:
            user_admin_access_sync(user)
