from django.apps import AppConfig


class WechatConfig(AppConfig):
    name = "wuye.channels.wechat"
    label = "wechat"
    verbose_name = "微信支付"
