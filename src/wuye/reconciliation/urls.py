"""URLs of the reconciliation finance pages (mounted at /reconciliation/)."""

from django.urls import URLPattern, URLResolver, path, register_converter

from wuye.reconciliation import views


class _Day:
    regex = "[0-9]{8}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(_Day, "yyyymmdd")

app_name = "reconciliation"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.day, name="day"),
    path("upload/", views.upload, name="upload"),
    path("run/", views.run, name="run"),
    path("report/<yyyymmdd:ymd>.<str:fmt>", views.report, name="report"),
    path("arrivals/<int:entry_id>/undo/", views.arrival_undo_view, name="arrival_undo"),
    path("exceptions/", views.queue, name="queue"),
    path("exceptions/<int:pk>/", views.detail, name="detail"),
    path("exceptions/<int:pk>/act/", views.act, name="act"),
    path("exceptions/<int:pk>/assign/", views.assign, name="assign"),
    path("exceptions/<int:pk>/note/", views.note, name="note"),
]
