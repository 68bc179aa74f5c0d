"""Data retention: finished runs older than the workspace's limit are purged (with their
steps and review tasks), never waiting or running ones; the audit trail is kept and
records each purge; ``manage.py runs purge --dry-run`` only counts."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.audit.services import audit_verify, data_settings_save
from apps.inbox.models import ReviewTask
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import Run, StepRun
from apps.runs.services import run_start, runs_purge
from apps.runs.tasks import purge_expired
from tests.inbox.helpers import start_waiting_run
from tests.runs.helpers import definition, node, published_flow

pytestmark = pytest.mark.django_db(transaction=True)


def finished_run(flow, *, days_ago: float) -> Run:
    run = run_start(flow=flow, trigger="manual", payload=envelope({"n": 1}), enqueue=False).run
    advance(run.id)
    run.refresh_from_db()
    assert run.status == "succeeded"
    Run.objects.filter(pk=run.pk).update(finished_at=timezone.now() - timedelta(days=days_ago))
    return run


def age(run: Run, *, days: float) -> None:
    past = timezone.now() - timedelta(days=days)
    Run.objects.filter(pk=run.pk).update(created_at=past, updated_at=past, started_at=past)


@pytest.fixture
def runs(workspace, other_workspace, admin_user, builder_user):
    flow = published_flow(
        workspace,
        builder_user,
        definition(
            [
                node("start", "trigger.manual"),
                node("echo", "transform.set", values={"n": "trigger.body.n"}),
            ],
            [("start", "echo")],
        ),
    )
    old = [finished_run(flow, days_ago=40), finished_run(flow, days_ago=100)]
    recent = finished_run(flow, days_ago=5)
    waiting = start_waiting_run(workspace, builder_user)
    assert waiting.status == "waiting"
    age(waiting, days=200)
    other_flow = published_flow(
        other_workspace, admin_user, definition([node("start", "trigger.manual")], []), name="Other"
    )
    other_old = finished_run(other_flow, days_ago=40)  # other workspace keeps the default 90
    data_settings_save(
        workspace=workspace, actor=admin_user, sensitive_fields=[], retention_days=30
    )
    return {"old": old, "recent": recent, "waiting": waiting, "other_old": other_old}


def test_purge_deletes_only_expired_finished_runs_and_is_audited(workspace, runs):
    old_ids = [run.id for run in runs["old"]]
    old_steps = StepRun.objects.filter(run_id__in=old_ids).count()
    assert old_steps >= 4
    events_before = AuditEvent.objects.filter(workspace=workspace).count()

    reports = {report.workspace_slug: report for report in runs_purge()}

    assert (reports["acme"].runs, reports["acme"].steps) == (2, old_steps)
    assert reports["acme"].retention_days == 30
    assert reports["globex"].runs == 0 and reports["globex"].retention_days == 90
    assert not Run.objects.filter(pk__in=old_ids).exists()
    assert not StepRun.objects.filter(run_id__in=old_ids).exists()
    kept = set(Run.objects.values_list("pk", flat=True))
    assert {runs["recent"].id, runs["waiting"].id, runs["other_old"].id} <= kept
    assert ReviewTask.objects.filter(run=runs["waiting"]).exists()

    purge = AuditEvent.objects.get(workspace=workspace, action="runs.purged")
    assert purge.data["runs"] == 2 and purge.data["steps"] == old_steps
    assert purge.data["retention_days"] == 30 and purge.data["review_tasks"] == 0
    # The audit trail is kept whole (the run events of the purged runs included).
    assert AuditEvent.objects.filter(workspace=workspace).count() == events_before + 1
    assert audit_verify(workspace_id=workspace.id).ok

    assert runs_purge()[0].runs == 0  # nothing left to purge
    assert AuditEvent.objects.filter(action="runs.purged").count() == 1


def test_a_finished_run_whose_parent_still_waits_is_kept(workspace, runs):
    child = runs["old"][0]
    Run.objects.filter(pk=child.pk).update(parent_run=runs["waiting"])
    runs_purge()
    assert Run.objects.filter(pk=child.pk).exists()
    assert not Run.objects.filter(pk=runs["old"][1].pk).exists()


def test_dry_run_command_prints_and_deletes_nothing(workspace, runs):
    out = io.StringIO()
    call_command("runs", "purge", "--dry-run", stdout=out)
    text = out.getvalue()
    assert "acme: would delete 2 runs" in text and "keeping 30 days" in text
    assert "globex: would delete 0 runs" in text
    assert Run.objects.filter(pk__in=[run.id for run in runs["old"]]).count() == 2
    assert not AuditEvent.objects.filter(action="runs.purged").exists()

    out = io.StringIO()
    call_command("runs", "purge", "--workspace", "acme", stdout=out)
    assert "acme: deleted 2 runs" in out.getvalue() and "globex" not in out.getvalue()


def test_the_daily_task_is_scheduled_and_purges(workspace, runs):
    entry = settings.CELERY_BEAT_SCHEDULE["purge-expired-runs"]
    assert entry["task"] == purge_expired.name == "runs.purge_expired"
    purge_expired()
    assert not Run.objects.filter(pk__in=[run.id for run in runs["old"]]).exists()


def test_a_finished_reviewed_run_goes_with_its_review_task(workspace, runs):
    reviewed = runs["waiting"]
    Run.objects.filter(pk=reviewed.pk).update(
        status="succeeded", finished_at=timezone.now() - timedelta(days=60)
    )
    runs_purge()
    assert not Run.objects.filter(pk=reviewed.pk).exists()
    assert not ReviewTask.objects.filter(run_id=reviewed.pk).exists()
    assert AuditEvent.objects.get(action="runs.purged").data["review_tasks"] == 1


def test_the_data_settings_page_names_the_last_purge(workspace, runs, admin_client):
    page = "/w/acme/settings/data/"
    assert "No run data has been purged yet." in admin_client.get(page).content.decode()
    runs_purge()
    assert "2 runs, " in admin_client.get(page).content.decode()
