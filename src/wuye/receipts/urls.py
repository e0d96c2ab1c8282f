"""Receipts under /r/: staff screens and prints, and the public page /r/<token>/."""

from django.urls import path

from wuye.receipts import views

app_name = "receipts"
urlpatterns = [
    path("receipts/", views.receipt_list, name="list"),
    path("receipts/voids/", views.void_list, name="voids"),
    path("receipts/<int:pk>/", views.receipt_detail, name="detail"),
    path("receipts/<int:pk>/pdf/", views.receipt_pdf, name="pdf"),
    path("receipts/<int:pk>/escpos/", views.receipt_escpos, name="escpos"),
    path("receipts/<int:pk>/print/", views.receipt_print_network, name="print"),
    path("receipts/<int:pk>/void/", views.void_request, name="void_request"),
    path(
        "receipts/<int:pk>/void/approve/",
        views.void_decide,
        {"decision": "approve"},
        name="void_approve",
    ),
    path(
        "receipts/<int:pk>/void/reject/",
        views.void_decide,
        {"decision": "reject"},
        name="void_reject",
    ),
    # The QR code's target: tokens are URL-safe base64 (letters, digits, - and _).
    path("<slug:token>/", views.verify, name="verify"),
]
