from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.dashboard_view, name="list"),
    path("slo/", views.slo_targets_view, name="slo"),
]
