from django.apps import AppConfig


class TerminalsConfig(AppConfig):
    name = "wuye.terminals"
    label = "terminals"
    verbose_name = "终端管理"
