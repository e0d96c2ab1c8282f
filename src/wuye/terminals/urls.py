"""Terminal-management screens, mounted at ``/terminals/``."""

from django.urls import URLPattern, URLResolver, path

from wuye.terminals import views

app_name = "terminals"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.fleet, name="list"),
    path("new/", views.register, name="new"),
    path("releases/", views.releases, name="releases"),
    path("releases/<int:pk>/", views.release_change, name="release_change"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/params/", views.params, name="params"),
    path("<int:pk>/token/", views.token_reset, name="token"),
    path("<int:pk>/enable/", views.enable, name="enable"),
    path("<int:pk>/key/", views.key_export, name="key"),
    path("<int:pk>/settle/", views.settle, name="settle"),
]
