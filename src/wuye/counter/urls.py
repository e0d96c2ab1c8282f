"""The counter's screens, mounted at ``/counter/``."""

from django.urls import path

from wuye.counter import views

app_name = "counter"
urlpatterns = [
    path("", views.index, name="index"),
    path("search/", views.search, name="search"),
    path("units/<int:pk>/", views.household, name="household"),
    path("units/<int:pk>/pay/", views.pay, name="pay"),
    path("orders/<int:pk>/", views.order, name="order"),
    path("payments/<int:pk>/refund/", views.refund, name="refund"),
    path("shifts/", views.shifts, name="shifts"),
    path("shifts/open/", views.shift_open, name="shift_open"),
    path("shifts/<int:pk>/", views.shift_detail, name="shift"),
    path("shifts/<int:pk>/close/", views.shift_close, name="shift_close"),
    path("shifts/<int:pk>/movement/", views.movement, name="movement"),
    path("day/", views.day, name="day"),
    path("day/report.xlsx", views.day_xlsx, name="day_xlsx"),
]
