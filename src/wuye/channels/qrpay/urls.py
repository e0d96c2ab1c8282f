"""URLs of the QR core (the counter's QR page and its JSON status)."""

from django.urls import URLPattern, URLResolver, path

from wuye.channels.qrpay import views

app_name = "qrpay"
urlpatterns: list[URLPattern | URLResolver] = [
    path("order/<int:pk>/", views.order, name="order"),
    path("order/<int:pk>/status/", views.status, name="status"),
    path("order/<int:pk>/scan/", views.scan, name="scan"),
    path("order/<int:pk>/cancel/", views.cancel, name="cancel"),
]
