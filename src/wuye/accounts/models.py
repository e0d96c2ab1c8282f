"""Users and what they may see: a role in a company, optionally narrowed to communities."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    ADMIN = "admin", _("管理员")
    CASHIER = "cashier", _("收费员")
    FINANCE = "finance", _("财务")
    MANAGER = "manager", _("项目经理")
    AUDITOR = "auditor", _("审计")


class User(AbstractUser):
    """A person who logs in. Platform superusers see every company; everyone else only
    the companies and communities their memberships grant."""

    display_name = models.CharField(_("姓名"), max_length=60, blank=True)
    phone = models.CharField(_("手机号"), max_length=20, blank=True)

    class Meta:
        verbose_name = _("用户")
        verbose_name_plural = _("用户")

    def __str__(self) -> str:
        return self.display_name or self.username


class Membership(models.Model):
    """A user's role in one company. No communities listed means all of the company's."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    company = models.ForeignKey(
        "estates.Company", on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(_("角色"), max_length=20, choices=Role.choices)
    communities = models.ManyToManyField(
        "estates.Community", blank=True, related_name="memberships", verbose_name=_("小区")
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "company", "role"], name="uniq_membership")
        ]
        verbose_name = _("角色授权")
        verbose_name_plural = _("角色授权")

    def __str__(self) -> str:
        return f"{self.user} · {self.company} · {self.get_role_display()}"
