"""URLs of this part (filled in by its issue's work)."""

from django.urls import URLPattern, URLResolver

app_name = "notices"
urlpatterns: list[URLPattern | URLResolver] = []
