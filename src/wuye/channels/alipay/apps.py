from django.apps import AppConfig


class AlipayConfig(AppConfig):
    name = "wuye.channels.alipay"
    label = "alipay"
    verbose_name = "支付宝"
