from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CounterConfig(AppConfig):
    name = "wuye.counter"
    label = "counter"
    verbose_name = _("收费台")
