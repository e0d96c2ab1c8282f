"""URLs of the WeChat Pay channel."""

from django.urls import URLPattern, URLResolver, path

from wuye.channels.wechat import views

app_name = "wechat"
urlpatterns: list[URLPattern | URLResolver] = [
    path("notify/", views.notify, name="notify"),
]
