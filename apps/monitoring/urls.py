from django.urls import path

from . import views

app_name = "monitoring"

urlpatterns = [
    path("", views.dashboard_panel_view, name="dashboard_panel"),
    path("models/<str:model_name>/", views.model_panel_view, name="model_panel"),
    path("models/<str:model_name>/settings/", views.model_settings_view, name="model_settings"),
    path(
        "alerts/<uuid:alert_id>/acknowledge/",
        views.alert_acknowledge_view,
        name="acknowledge_alert",
    ),
]
