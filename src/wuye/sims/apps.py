from django.apps import AppConfig


class SimsConfig(AppConfig):
    name = "wuye.sims"
    label = "sims"
    verbose_name = "模拟器"
