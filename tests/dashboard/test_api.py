"""GET /api/w/<slug>/dashboard/: the figures the dashboard's charts draw, per workspace."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.accounts.services import api_token_create
from tests.dashboard.test_views import history  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def api_url(slug: str = "acme") -> str:
    return f"/api/w/{slug}/dashboard/"


def test_the_api_answers_every_figure_and_a_bucket_series(builder_client, history):  # noqa: F811
    response = builder_client.get(api_url(), {"range": "1h"})
    assert response.status_code == 200
    figures = response.json()
    assert figures["range"] == "1h"
    assert figures["runs"]["total"] == 5 and figures["runs"]["by_status"]["failed"] == 1
    assert figures["runs"]["failure_rate"] == pytest.approx(0.25)
    blocks = {row["block_type"] for row in figures["steps"]["latency"]}
    assert blocks == {"trigger.manual", "transform.set"}
    assert figures["steps"]["error_rate"] == pytest.approx(1 / 9)
    assert figures["queue"] == {"depth": 0, "lag_seconds": 0.0, "waiting": {"delay": 1}}
    assert figures["inbox"]["open"] == 0
    assert figures["models"]["calls"] == 0 and figures["cost"]["per_1000_inferences"] is None
    assert [slo["key"] for slo in figures["slo"]][:2] == ["run_success_percent", "step_p95_ms"]
    series = figures["series"]
    assert series["bucket_minutes"] == 5 and len(series["runs"]) in (12, 13)
    assert sum(bucket["succeeded"] for bucket in series["runs"]) == 3
    assert sum(bucket["waiting"] for bucket in series["runs"]) == 1


def test_an_unknown_range_is_a_400_naming_the_field(builder_client):
    response = builder_client.get(api_url(), {"range": "1y"})
    assert response.status_code == 400
    assert "not one of the available choices" in str(response.json()["error"]["fields"]["range"])


def test_another_workspace_gets_404_and_its_own_figures(outsider, other_workspace, history):  # noqa: F811
    client = APIClient()
    token = api_token_create(user=outsider, workspace=other_workspace, name="probe").secret
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get(api_url("acme")).status_code == 404
    theirs = client.get(api_url("globex"))
    assert theirs.status_code == 200 and theirs.json()["runs"]["total"] == 0


def test_the_api_needs_credentials(client):
    assert client.get(api_url()).status_code == 401


SLO_TARGETS = {
    "run_success_percent": 99.5,
    "step_p95_ms": 800,
    "model_p95_ms": 250,
    "policy_p95_ms": 10,
    "inbox_oldest_hours": 4.0,
}


def test_admins_replace_slo_targets_through_the_api(admin_user, builder_client):
    from apps.audit.models import AuditEvent

    client = APIClient()
    client.force_authenticate(admin_user)
    assert client.get(api_url() + "slo/").json()["run_success_percent"] == 95.0  # the default
    response = client.put(api_url() + "slo/", SLO_TARGETS, format="json")
    assert response.status_code == 200 and response.json()["model_p95_ms"] == 250
    assert builder_client.get(api_url() + "slo/").json()["inbox_oldest_hours"] == 4.0
    event = AuditEvent.objects.get(action="settings.slo_changed")
    assert event.actor == admin_user and event.data["after"]["step_p95_ms"] == 800


def test_slo_targets_out_of_bounds_are_a_400_per_field_and_builders_get_403(
    admin_user, builder_user
):
    from apps.dashboard.models import SloTargets

    client = APIClient()
    client.force_authenticate(admin_user)
    bad = {**SLO_TARGETS, "run_success_percent": 101, "step_p95_ms": 0}
    response = client.put(api_url() + "slo/", bad, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"run_success_percent", "step_p95_ms"}
    missing = client.put(api_url() + "slo/", {"model_p95_ms": 300}, format="json")
    assert missing.status_code == 400 and "policy_p95_ms" in missing.json()["error"]["fields"]
    client.force_authenticate(builder_user)
    assert client.put(api_url() + "slo/", SLO_TARGETS, format="json").status_code == 403
    assert not SloTargets.objects.exists()
