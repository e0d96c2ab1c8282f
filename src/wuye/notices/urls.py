"""URLs of the notices part: the staff page and the residents' pay page ``/notices/p/<token>/``."""

from django.urls import URLPattern, URLResolver, path

from wuye.notices import views

app_name = "notices"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.index, name="index"),
    path("household/", views.household_pdf, name="household_pdf"),
    path("jobs/<int:pk>/pdf/", views.job_pdf, name="job_pdf"),
    path("p/<str:token>/", views.pay, name="pay"),
    path("p/<str:token>/start/", views.pay_start, name="pay_start"),
    path("p/<str:token>/status/", views.pay_status, name="pay_status"),
]
