from django.apps import AppConfig


class QrpayConfig(AppConfig):
    name = "wuye.channels.qrpay"
    label = "qrpay"
    verbose_name = "扫码支付"
