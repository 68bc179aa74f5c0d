"""Policy pages: thin adapters that parse, authorize (``workspace_view``), call one selector
or service and render. htmx requests get the partial named in each view."""

from __future__ import annotations

import difflib
import json

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse

from apps.accounts.decorators import WorkspaceRequest, workspace_view
from apps.accounts.permissions import Capability, can

from . import selectors, services
from .engine import PolicyError, compile_check
from .forms import DraftForm, PlaygroundForm, PolicyCreateForm, PublishForm, TestCaseForm
from .models import Policy

NEW_POLICY_SOURCE = """package flowgate.{package}

# Deny by default: allow only what a rule below says.
default allow := false

allow if {{
\tinput.amount < 100
}}
"""


def _detail_url(request: WorkspaceRequest, policy: Policy) -> str:
    return reverse(
        "policies:detail",
        kwargs={"workspace_slug": request.workspace.slug, "policy_slug": policy.slug},
    )


def _form_errors(form: object) -> str:
    return "; ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items())  # type: ignore[attr-defined]


@workspace_view(Capability.VIEW_POLICIES)
def policy_list_view(request: WorkspaceRequest) -> HttpResponse:
    policies = selectors.policy_list(workspace=request.workspace)
    return render(
        request,
        "policies/list.html",
        {
            "policies": policies,
            "can_manage": can(request.membership, Capability.MANAGE_POLICIES),
        },
    )


@workspace_view(Capability.MANAGE_POLICIES)
def policy_create_view(request: WorkspaceRequest) -> HttpResponse:
    form = PolicyCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        slug = form.cleaned_data["slug"]
        try:
            policy = services.policy_create(
                workspace=request.workspace,
                actor=request.user,
                slug=slug,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                source=NEW_POLICY_SOURCE.format(package=slug.replace("-", "_")),
            )
        except services.PolicyValidationError as error:
            form.add_error("slug", error.message)
        else:
            return redirect(_detail_url(request, policy))
    return render(
        request, "policies/create.html", {"form": form}, status=400 if form.errors else 200
    )


def _detail_context(
    request: WorkspaceRequest, policy: object, **extra: object
) -> dict[str, object]:
    versions = list(selectors.policy_version_list(policy=policy))  # type: ignore[arg-type]
    return {
        "policy": policy,
        "versions": versions,
        "latest": versions[0] if versions else None,
        "test_cases": selectors.policy_test_case_list(policy=policy),  # type: ignore[arg-type]
        "usage": selectors.policy_usage(policy=policy),  # type: ignore[arg-type]
        "can_manage": can(request.membership, Capability.MANAGE_POLICIES),
        "draft_form": DraftForm(initial={"source": policy.draft_source}),  # type: ignore[attr-defined]
        "test_form": TestCaseForm(),
        "playground_form": PlaygroundForm(
            initial={"rule": _default_rule(versions[0].rules if versions else [])}
        ),
        "compile_errors": compile_check(policy.draft_source),  # type: ignore[attr-defined]
        **extra,
    }


def _default_rule(rules: list[str]) -> str:
    """The rule flows and gates read (``decision``) when there is one."""
    return "decision" if "decision" in rules or not rules else rules[0]


@workspace_view(Capability.VIEW_POLICIES)
def policy_detail_view(request: WorkspaceRequest, policy_slug: str) -> HttpResponse:
    policy = selectors.policy_get(workspace=request.workspace, slug=policy_slug)
    return render(request, "policies/detail.html", _detail_context(request, policy))


@workspace_view(Capability.MANAGE_POLICIES)
def draft_save_view(request: WorkspaceRequest, policy_slug: str) -> HttpResponse:
    policy = selectors.policy_get(workspace=request.workspace, slug=policy_slug)
    form = DraftForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(_form_errors(form))
    errors = services.policy_draft_save(
        policy=policy, actor=request.user, source=form.cleaned_data["source"]
    )
    context = {"compile_errors": errors, "saved": True}
    if request.htmx:
        return render(request, "policies/partials/compile_errors.html", context)
    if not errors:
        messages.success(request, "Draft saved; it compiles.")
        return redirect(_detail_url(request, policy))
    return render(
        request, "policies/detail.html", _detail_context(request, policy, **context), status=400
    )


@workspace_view(Capability.MANAGE_POLICIES)
def publish_view(request: WorkspaceRequest, policy_slug: str) -> HttpResponse:
    policy = selectors.policy_get(workspace=request.workspace, slug=policy_slug)
    form = PublishForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(_form_errors(form))
    try:
        version = services.policy_publish(
            policy=policy, actor=request.user, note=form.cleaned_data["note"]
        )
    except services.PolicyValidationError as error:
        return render(
            request,
            "policies/detail.html",
            _detail_context(
                request,
                policy,
                publish_error=error.message,
                publish_problems=[str(item) for item in error.errors],
            ),
            status=400,
        )
    messages.success(request, f"Published version {version.number}.")
    return redirect(_detail_url(request, policy))


@workspace_view(Capability.MANAGE_POLICIES)
def test_case_create_view(request: WorkspaceRequest, policy_slug: str) -> HttpResponse:
    policy = selectors.policy_get(workspace=request.workspace, slug=policy_slug)
    form = TestCaseForm(request.POST)
    if form.is_valid():
        try:
            services.policy_test_case_save(policy=policy, actor=request.user, **form.cleaned_data)
        except services.PolicyValidationError as error:
            form.add_error(None, error.message)
        else:
            return redirect(_detail_url(request, policy) + "#tests")
    # The page again with the form open, what was typed and each field's error.
    return render(
        request,
        "policies/detail.html",
        _detail_context(request, policy, test_form=form),
        status=400,
    )


@workspace_view(Capability.MANAGE_POLICIES)
def test_case_delete_view(
    request: WorkspaceRequest, policy_slug: str, test_id: object
) -> HttpResponse:
    policy = selectors.policy_get(workspace=request.workspace, slug=policy_slug)
    if request.method != "POST":
        return HttpResponse(status=405)
    services.policy_test_case_delete(
        test_case=selectors.policy_test_case_get(policy=policy, test_id=test_id), actor=request.user
    )
    return redirect(_detail_url(request, policy) + "#tests")


@workspace_view(Capability.VIEW_POLICIES)
def tests_run_view(request: WorkspaceRequest, policy_slug: str) -> HttpResponse:
    policy = selectors.policy_get(workspace=request.workspace, slug=policy_slug)
    if request.method != "POST":
        return HttpResponse(status=405)
    try:
        outcomes, problem = services.policy_tests_run(policy=policy), ""
    except PolicyError as error:
        outcomes, problem = [], str(error)
    return render(
        request, "policies/partials/test_results.html", {"outcomes": outcomes, "problem": problem}
    )


def _playground_problem(request: HttpRequest, message: str) -> HttpResponse:
    """422, which the page's htmx swaps into the result area (other 4xx it would drop)."""
    return render(
        request, "policies/partials/playground_problem.html", {"message": message}, status=422
    )


@workspace_view(Capability.VIEW_POLICIES)
def playground_view(request: WorkspaceRequest, policy_slug: str) -> HttpResponse:
    policy = selectors.policy_get(workspace=request.workspace, slug=policy_slug)
    if request.method != "POST":
        return HttpResponse(status=405)
    form = PlaygroundForm(request.POST)
    if not form.is_valid():
        return _playground_problem(request, _form_errors(form))
    # Viewers may try the published draft; only managers may evaluate unsaved source.
    source = (
        form.cleaned_data["source"] if can(request.membership, Capability.MANAGE_POLICIES) else ""
    )
    try:
        result = services.policy_playground_run(
            policy=policy,
            actor=request.user,
            rule=form.cleaned_data["rule"],
            input=form.cleaned_data["input"],
            source=source or None,
        )
    except services.PolicyValidationError as error:
        return _playground_problem(request, error.message)
    return render(
        request,
        "policies/partials/playground_result.html",
        {
            "result": result,
            "verdict": _verdict(result.decision.allow, result.value),
            "value_json": json.dumps(result.value, indent=2),
            "fired_json": json.dumps(result.fired, indent=2),
        },
    )


# Rule results that read as a yes or a no, whatever word the policy uses.
YES_WORDS = {"allow", "allowed", "approve", "approved", "accept", "accepted", "pass"}
NO_WORDS = {"deny", "denied", "reject", "rejected", "block", "blocked", "fail"}


def _verdict(allow: bool, value: object) -> dict[str, str]:
    """The playground's badge: what the rule answered. A rule that returns a word (a route)
    shows that word, green or red when it reads as a yes or a no; a yes/no rule shows
    allow or deny; no answer (undefined, an error) is a deny."""
    if not allow or value is None or value is False:
        return {"label": "deny", "css": "deny"}
    if value is True:
        return {"label": "allow", "css": "allow"}
    if isinstance(value, str):
        word = value.lower()
        css = "allow" if word in YES_WORDS else "deny" if word in NO_WORDS else "result"
        return {"label": value, "css": css}
    return {"label": "result", "css": "result"}


@workspace_view(Capability.VIEW_POLICIES)
def version_detail_view(request: WorkspaceRequest, policy_slug: str, number: int) -> HttpResponse:
    policy = selectors.policy_get(workspace=request.workspace, slug=policy_slug)
    version = selectors.policy_version_get(policy=policy, number=number)
    return render(
        request,
        "policies/version.html",
        {
            "policy": policy,
            "version": version,
            "can_manage": can(request.membership, Capability.MANAGE_POLICIES),
        },
    )


@workspace_view(Capability.MANAGE_POLICIES)
def rollback_view(request: WorkspaceRequest, policy_slug: str, number: int) -> HttpResponse:
    policy = selectors.policy_get(workspace=request.workspace, slug=policy_slug)
    if request.method != "POST":
        return HttpResponse(status=405)
    version = selectors.policy_version_get(policy=policy, number=number)
    try:
        new_version = services.policy_rollback(policy=policy, actor=request.user, version=version)
    except services.PolicyValidationError as error:
        return HttpResponseBadRequest(error.message)
    messages.success(
        request, f"Rolled back: version {new_version.number} has version {number}'s source."
    )
    return redirect(_detail_url(request, policy))


@workspace_view(Capability.VIEW_POLICIES)
def diff_view(request: WorkspaceRequest, policy_slug: str) -> HttpResponse:
    policy = selectors.policy_get(workspace=request.workspace, slug=policy_slug)
    try:
        old_number, new_number = int(request.GET.get("from", "")), int(request.GET.get("to", ""))
    except ValueError:
        return HttpResponseBadRequest("Choose two versions (from and to) to compare.")
    old = selectors.policy_version_get(policy=policy, number=old_number)
    new = selectors.policy_version_get(policy=policy, number=new_number)
    lines = list(
        difflib.unified_diff(
            old.source.splitlines(),
            new.source.splitlines(),
            f"v{old.number}",
            f"v{new.number}",
            lineterm="",
        )
    )
    return render(
        request, "policies/diff.html", {"policy": policy, "old": old, "new": new, "lines": lines}
    )


@workspace_view(Capability.VIEW_POLICIES)
def evaluation_list_view(request: WorkspaceRequest) -> HttpResponse:
    allow = {"allow": True, "deny": False}.get(request.GET.get("verdict", ""))
    evaluations = selectors.policy_evaluation_list(
        workspace=request.workspace,
        policy_slug=request.GET.get("policy", ""),
        allow=allow,
        source=request.GET.get("source", "")[:100],
        version=request.GET.get("version", "")[:64],
    )[:100]
    return render(
        request, "policies/evaluations.html", {"evaluations": evaluations, "query": request.GET}
    )
