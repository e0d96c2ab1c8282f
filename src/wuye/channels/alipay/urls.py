"""URLs of the Alipay channel: its notification endpoint (``/pay/alipay/notify/``)."""

from django.urls import URLPattern, URLResolver, path

from wuye.channels.alipay import views

app_name = "alipay"
urlpatterns: list[URLPattern | URLResolver] = [
    path("notify/", views.notify, name="notify"),
]
