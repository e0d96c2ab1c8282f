from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    name = "wuye.reconciliation"
    label = "reconciliation"
    verbose_name = "对账"
