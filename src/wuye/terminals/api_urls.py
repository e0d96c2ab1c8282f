"""The terminal API (docs/terminal-api.md), mounted at ``/api/terminal/``."""

from django.urls import URLPattern, URLResolver, path

from wuye.terminals import api_views

app_name = "terminals_api"
urlpatterns: list[URLPattern | URLResolver] = [
    path("v1/heartbeat", api_views.heartbeat, name="heartbeat"),
    path("v1/requests", api_views.requests_poll, name="requests"),
    path("v1/requests/<str:public_id>/accept", api_views.request_accept, name="accept"),
    path("v1/results", api_views.results, name="results"),
    path("v1/settlements", api_views.settlements, name="settlements"),
]
