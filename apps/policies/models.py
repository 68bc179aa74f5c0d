"""Policies as code: a Policy (with its draft), immutable published versions, test cases,
and the log of every evaluation."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import PublicModel, WorkspaceOwned


class Policy(WorkspaceOwned):
    """A Rego policy owned by a workspace. ``draft_source`` is what the editor saves; flows
    and gates only ever evaluate a published ``PolicyVersion``. ``gate`` names the gate
    (flow_publish, model_promotion, ai_provider, agent_tools, …) this policy decides, if any."""

    slug = models.SlugField(max_length=60)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    package = models.CharField(max_length=200)
    draft_source = models.TextField()
    gate = models.CharField(max_length=40, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "slug"], name="policy_slug_unique_per_workspace"
            ),
            models.UniqueConstraint(
                fields=["workspace", "gate"],
                condition=~models.Q(gate=""),
                name="one_policy_per_gate_per_workspace",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PolicyVersion(PublicModel):
    """One published, immutable version of a policy. ``sha256`` of ``source`` is the version
    hash every decision records. Never updated after it is created (``save`` refuses)."""

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    source = models.TextField()
    package = models.CharField(max_length=200)
    sha256 = models.CharField(max_length=64, db_index=True)
    rules = models.JSONField(default=list)
    note = models.CharField(max_length=300, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    published_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "number"], name="policy_version_number_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy} v{self.number}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValueError("published policy versions are immutable")
        super().save(*args, **kwargs)


class PolicyTestCase(PublicModel):
    """A unit test of a policy: evaluating ``rule`` for ``input`` must give ``expected``
    (the rule's value, compared as JSON)."""

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="test_cases")
    name = models.CharField(max_length=120)
    rule = models.CharField(max_length=100)
    input = models.JSONField(default=dict)
    expected = models.JSONField(null=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "name"], name="policy_test_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class PolicyEvaluation(WorkspaceOwned):
    """One evaluation of a published policy version (or a draft, in the playground): the
    decision log. ``input_digest`` is sha256 of the canonical input JSON, ``input`` its
    redacted copy; ``source`` says who asked ("flow run <id> node <id>", "gate flow_publish",
    "playground")."""

    # Written by every decision: only the indexes the decision log's filters use
    # (``selectors.policy_evaluation_list``: always within a workspace, newest first; slug
    # and digest whole, version by prefix, source by substring, which no B-tree serves).
    workspace = models.ForeignKey(
        "accounts.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    policy = models.ForeignKey(Policy, on_delete=models.SET_NULL, null=True, related_name="+")
    policy_slug = models.CharField(max_length=60)
    version = models.CharField(max_length=64)
    rule = models.CharField(max_length=100)
    input_digest = models.CharField(max_length=64)
    input = models.JSONField(default=dict)
    result = models.JSONField(null=True)
    reasons = models.JSONField(default=list)
    allow = models.BooleanField()
    error = models.TextField(blank=True)
    duration_ms = models.FloatField()
    backend = models.CharField(max_length=20)
    source = models.CharField(max_length=200)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["workspace", "-created_at"], name="policy_eval_recent"),
            models.Index(fields=["policy_slug"], name="policy_eval_slug"),
            models.Index(
                fields=["version"], name="policy_eval_version", opclasses=["varchar_pattern_ops"]
            ),
            models.Index(fields=["input_digest"], name="policy_eval_input"),
        ]

    def __str__(self) -> str:
        return f"{self.policy_slug}@{self.version[:12]} {'allow' if self.allow else 'deny'}"
