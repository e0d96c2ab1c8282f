"""The card channel's pages, mounted at ``/pay/card/``."""

from django.urls import URLPattern, URLResolver, path

from wuye.channels.card import views

app_name = "card"
urlpatterns: list[URLPattern | URLResolver] = [
    path("order/<int:pk>/", views.order, name="order"),
    path("order/<int:pk>/status/", views.status, name="status"),
    path("payment/<int:pk>/refund/", views.refund, name="refund"),
    path(
        "payment/<int:pk>/refund/<int:request_pk>/cancel/",
        views.refund_cancel,
        name="refund_cancel",
    ),
]
