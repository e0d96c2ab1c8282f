"""Imports and exports, mounted at /imports/."""

from django.urls import path

from wuye.imports import views

app_name = "imports"
urlpatterns = [
    path("", views.index, name="index"),
    path("upload/", views.upload, name="upload"),
    path("template/<slug:kind>.xlsx", views.template, name="template"),
    path("export/<slug:kind>.xlsx", views.export, name="export"),
    path("batches/<int:pk>/", views.batch, name="batch"),
    path("batches/<int:pk>/errors.xlsx", views.batch_errors, name="batch_errors"),
]
