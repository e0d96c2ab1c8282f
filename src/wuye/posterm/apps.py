from django.apps import AppConfig


class PostermConfig(AppConfig):
    name = "wuye.posterm"
    label = "posterm"
    verbose_name = "POS终端程序"
