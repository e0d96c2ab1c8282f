"""Wuye's own screens (the admin, login and language switch are in ``wuye.urls``)."""

from django.urls import path

from wuye.web import views

app_name = "web"
urlpatterns = [
    path("", views.home, name="home"),
    path("communities/", views.communities, name="communities"),
    path("communities/<int:pk>/", views.community_detail, name="community"),
    path("buildings/<int:pk>/", views.building_detail, name="building"),
    path("units/search/", views.unit_search, name="unit_search"),
    path("units/<int:pk>/", views.household, name="household"),
    path("bills/", views.bills, name="bills"),
    path("bills/export.csv", views.bills_export, name="bills_export"),
    path("waivers/new/<int:bill_pk>/", views.waiver_new, name="waiver_new"),
    path("waivers/", views.waivers, name="waivers"),
    path(
        "waivers/<int:pk>/approve/",
        views.waiver_decide,
        {"decision": "approve"},
        name="waiver_approve",
    ),
    path(
        "waivers/<int:pk>/reject/",
        views.waiver_decide,
        {"decision": "reject"},
        name="waiver_reject",
    ),
    path("runs/", views.runs, name="runs"),
    path("runs/launch/", views.run_launch, name="run_launch"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
    path("jobs/", views.jobs, name="jobs"),
    path("jobs/<int:pk>/", views.job_detail, name="job"),
    path("merchants/", views.merchants, name="merchants"),
]
