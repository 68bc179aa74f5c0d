from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.accounts.oidc import SignInCallback, SignInStart
from apps.dashboard.views import metrics_view
from apps.runs.webhooks import webhook

# Each section keeps its own namespace ("flows:list", "runs:list", ...): they are included
# here, not inside the "core" namespace, so their names stay short and stable.
workspace_sections = [
    path("flows/", include("apps.flows.urls")),
    path("runs/", include("apps.runs.urls")),
    path("inbox/", include("apps.inbox.urls")),
    path("models/", include("apps.mlmodels.urls")),
    path("policies/", include("apps.policies.urls")),
    path("audit/", include("apps.audit.urls")),
    path("dashboard/", include("apps.dashboard.urls")),
    path("monitoring/", include("apps.monitoring.urls")),
    path("tools/", include("apps.mcp_tools.urls")),
    path("evaluations/", include("apps.evaluations.urls")),
    path("settings/connections/", include("apps.connectors.urls")),
    path("settings/data/", include("apps.audit.settings_urls")),
    path("settings/", include("apps.accounts.settings_urls")),
]

urlpatterns = [
    path("", include("apps.core.urls")),
    path("", include("apps.shell.urls")),
    path("w/<slug:workspace_slug>/", include(workspace_sections)),
    path("accounts/", include("apps.accounts.urls")),
    # Single sign-on; the names are the ones mozilla-django-oidc reverses.
    path("oidc/authenticate/", SignInStart.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", SignInCallback.as_view(), name="oidc_authentication_callback"),
    path("api/", include("studio.api_urls")),
    path("hooks/<str:token>", webhook, name="webhook"),
    path("metrics", metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

handler400 = "apps.core.views.bad_request"
handler404 = "apps.core.views.page_not_found"
