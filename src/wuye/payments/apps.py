from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PaymentsConfig(AppConfig):
    name = "wuye.payments"
    label = "payments"
    verbose_name = _("收款")
