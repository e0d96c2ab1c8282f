"""The payments app's JSON API (mounted at ``/api/payments/``)."""

from django.urls import path

from wuye.payments import api

app_name = "payments_api"

urlpatterns = [path("", api.payments, name="payments")]
