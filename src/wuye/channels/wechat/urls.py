"""URLs of this part (filled in by its issue's work)."""

from django.urls import URLPattern, URLResolver

app_name = "wechat"
urlpatterns: list[URLPattern | URLResolver] = []
