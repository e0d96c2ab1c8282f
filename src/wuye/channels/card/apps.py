from django.apps import AppConfig


class CardConfig(AppConfig):
    name = "wuye.channels.card"
    label = "card"
    verbose_name = "银行卡"
