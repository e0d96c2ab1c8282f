from django.apps import AppConfig


class NoticesConfig(AppConfig):
    name = "wuye.notices"
    label = "notices"
    verbose_name = "缴费通知单"
