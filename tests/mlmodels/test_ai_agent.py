"""ai.agent against the real model service (the toy language model from the real MLflow
registry, asked through its OpenAI ``tools`` API), the real Rego policy engine deciding
each call (``agent_tools``), the inbox for reviews, and real child runs for sub-flows.

The toy model cannot plan: the service offers it each tool until it has been called and
picks by guided choice (README, "AI blocks"). With this training data it prefers calling
``lookup`` (and ``summary``) to answering, so the agents below call them, then answer."""

from __future__ import annotations

import json

import httpx
import pytest

from apps.accounts.models import Membership
from apps.audit.models import AuditEvent
from apps.inbox.models import ReviewTask
from apps.inbox.services import task_decide
from apps.mlmodels.agent import AgentConfig
from apps.mlmodels.training import SUPPORT_WRITER
from apps.policies.models import Policy
from apps.policies.services import policy_defaults_ensure, policy_publish
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import AgentCall, Run, StepRun
from apps.runs.services import run_start
from tests.mlmodels.helpers import LOOKUP_TOOL as LOOKUP
from tests.runs.helpers import definition, node, published_flow

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ORDER = {"id": 42, "email": "ann@example.com"}
SUMMARY = {"name": "summary", "description": "Summarise an order", "flow": "summarise"}


@pytest.fixture
def model_service(settings, model_stack, language_models):
    settings.FLOWGATE = {**settings.FLOWGATE, "MODEL_SERVICE_URL": model_stack.service.url}
    return model_stack.service.url


def agent_flow(workspace, builder, **agent):
    config = {
        "model": SUPPORT_WRITER,
        "goal": "Find order {{ trigger.body.id }} for {{ trigger.body.email }} and say where it is.",
        "max_tokens": 120,
        "tools": [LOOKUP],
        **agent,
    }
    return published_flow(
        workspace,
        builder,
        definition(
            [
                node("start", "trigger.manual"),
                node("agent", "ai.agent", **config),
                node("done", "transform.set", values={"answer": "steps.agent.output.answer"}),
                node("tired", "transform.set", values={"why": "steps.agent.output.reason"}),
            ],
            [("start", "agent"), ("agent", "done", "out"), ("agent", "tired", "exhausted")],
            name="Order agent",
        ),
        name="Order agent",
    )


def start(flow) -> Run:
    run = run_start(flow=flow, trigger="manual", payload=envelope(ORDER), enqueue=False).run
    advance(run.id)
    run.refresh_from_db()
    return run


def agent_step(run) -> StepRun:
    return StepRun.objects.filter(run=run, node_id="agent").order_by("-attempt").first()


def edit_policy(workspace, actor, **assignments: str) -> None:
    policy_defaults_ensure(workspace=workspace, actor=actor, slugs=("agent_tools",))
    policy = Policy.objects.get(workspace=workspace, slug="agent_tools")
    source = policy.draft_source
    for name, value in assignments.items():
        line = next(line for line in source.splitlines() if line.startswith(f"{name} :="))
        source = source.replace(line, f"{name} := {value}")
    policy_publish(policy=policy, actor=actor, source=source)


# --- the model service's tools API ---------------------------------------------------


def chat(url, **body):
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)


TOOLS = [{"type": "function", "function": {k: LOOKUP[k] for k in ("name", "description")}}]
TOOLS[0]["function"]["parameters"] = LOOKUP["parameters"]


def test_the_service_answers_with_tool_calls_in_openai_format(model_stack, language_models):
    url = model_stack.service.url
    asked = [{"role": "user", "content": "Where is order 42?"}]
    answer = chat(url, model=SUPPORT_WRITER, messages=asked, tools=TOOLS, max_tokens=40).json()
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["function"]["name"] == "lookup"
    assert isinstance(json.loads(call["function"]["arguments"])["order_id"], int)
    assert answer["usage"]["completion_tokens"] > 0
    # With the tool's result in the conversation, the toy answers.
    followed = [
        *asked,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": '{"state": "shipped"}'},
    ]
    final = chat(url, model=SUPPORT_WRITER, messages=followed, tools=TOOLS, max_tokens=20).json()
    assert final["choices"][0]["finish_reason"] in ("stop", "length")
    assert final["choices"][0]["message"]["content"]
    # tool_choice: none answers, a named function is called.
    none = chat(url, model=SUPPORT_WRITER, messages=asked, tools=TOOLS, tool_choice="none")
    assert none.json()["choices"][0]["message"].get("tool_calls") is None
    forced = chat(
        url,
        model=SUPPORT_WRITER,
        messages=followed,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "lookup"}},
    ).json()
    assert forced["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "lookup"


SUMMARY_BLOCK = {
    "name": "summary",
    "description": "Summarise an order",
    "block": "transform.set",
    "config": {"values": {"summary": "'one order, shipped'"}},
    "parameters": LOOKUP["parameters"],
}
TWO_TOOLS = [
    *TOOLS,
    {"type": "function", "function": {k: SUMMARY_BLOCK[k] for k in ("name", "description")}},
]
TWO_TOOLS[1]["function"]["parameters"] = SUMMARY_BLOCK["parameters"]


def test_the_service_answers_several_tool_calls_when_the_request_allows_them(
    model_stack, language_models
):
    url = model_stack.service.url
    asked = [{"role": "user", "content": "Where is order 42?"}]
    one = chat(url, model=SUPPORT_WRITER, messages=asked, tools=TWO_TOOLS, max_tokens=40).json()
    assert len(one["choices"][0]["message"]["tool_calls"]) == 1  # the default: one a turn

    def parallel(messages, max_tokens):
        return chat(
            url,
            model=SUPPORT_WRITER,
            messages=messages,
            tools=TWO_TOOLS,
            parallel_tool_calls=True,
            max_tokens=max_tokens,
        ).json()

    choice = parallel(asked, 40)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    calls = choice["message"]["tool_calls"]
    assert sorted(call["function"]["name"] for call in calls) == ["lookup", "summary"]
    assert len({call["id"] for call in calls}) == 2
    assert all(isinstance(json.loads(c["function"]["arguments"]), dict) for c in calls)
    # Both results in the conversation: no tool is left to call, the toy answers.
    followed = [
        *asked,
        {"role": "assistant", "content": None, "tool_calls": calls},
        *(
            {"role": "tool", "tool_call_id": call["id"], "content": '{"state": "shipped"}'}
            for call in calls
        ),
    ]
    final = parallel(followed, 20)
    assert final["choices"][0]["finish_reason"] in ("stop", "length")
    assert final["choices"][0]["message"]["content"]
    refused = chat(url, model=SUPPORT_WRITER, messages=asked, tools=TOOLS, parallel_tool_calls=1)
    assert refused.status_code == 400
    assert "parallel_tool_calls" in refused.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, "name"),
        ({"tools": TOOLS, "tool_choice": {"function": {"name": "other"}}}, "tool_choice"),
        ({"tools": TOOLS, "stream": True}, "stream"),
        ({"tools": "lookup"}, "tools must be a list"),
    ],
)
def test_bad_tools_are_a_400_naming_the_problem(model_stack, language_models, body, message):
    answer = chat(
        model_stack.service.url,
        model=SUPPORT_WRITER,
        messages=[{"role": "user", "content": "hi"}],
        **body,
    )
    assert answer.status_code == 400 and message in answer.json()["error"]["message"]


# --- the block in flow runs -------------------------------------------------------------


def test_an_agent_calls_a_block_tool_the_policy_allows_then_answers(
    workspace, builder_user, model_service, monkeypatch
):
    sent = []
    monkeypatch.setattr(
        "apps.runs.agent_calls.publish_run_event", lambda _w, _r, event: sent.append(event)
    )
    run = start(agent_flow(workspace, builder_user))
    # The run page follows each call live (it re-renders on the run's events).
    assert [event["status"] for event in sent] == ["recorded", "running", "succeeded"]
    assert {(event["type"], event["run"], event["node"]) for event in sent} == {
        ("run.agent_call", str(run.id), "agent")
    }
    assert run.status == "succeeded", run.error
    step = agent_step(run)
    assert step.port == "out" and step.output["answer"] and step.output["calls"] == 1
    (call,) = AgentCall.objects.filter(run=run)
    assert (call.tool, call.kind, call.target, call.status) == (
        "lookup",
        "block",
        "transform.set",
        "succeeded",
    )
    assert call.output == {"output": {"order": call.arguments["order_id"], "state": "shipped"}}
    assert call.decision["action"] == "allow" and call.decision["policy"] == "agent_tools"
    assert call.decision["reasons"] == ["lookup may be called by agents"]
    meta = step.meta
    assert (meta["model"], meta["model_version"], meta["provider"]) == (
        SUPPORT_WRITER,
        "1",
        "flowgate-models",
    )
    assert meta["turns"] == 2 and meta["end"] == "answered"
    assert meta["usage"]["total"] == meta["usage"]["prompt"] + meta["usage"]["completion"] > 0
    assert meta["latency_ms"] > 0 and meta["cost"] >= 0
    # The goal is recorded with the workspace's credential-looking and sensitive fields masked
    # the same way as ai.generate's prompt; here nothing is sensitive.
    assert "Find order 42" in meta["prompt"]
    assert meta["calls"][0]["policy_action"] == "allow"
    assert meta["calls"][0]["key"] == call.key
    # The gate decision is audited, and the agent step is a decision record of its own.
    assert AuditEvent.objects.filter(action="gate.evaluated", object_id="agent_tools").exists()
    decision = AuditEvent.objects.get(action="decision.model", object_id=str(run.id))
    assert decision.data["meta"]["calls"][0]["tool"] == "lookup"


def test_the_run_page_and_the_decision_page_show_the_calls(
    workspace, builder_user, admin_user, reviewer_user, builder_client, model_service
):
    edit_policy(workspace, admin_user, review_tools='{"lookup"}')
    run = start(agent_flow(workspace, builder_user))
    page = builder_client.get(f"/w/{workspace.slug}/runs/{run.id}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-agent-calls="agent"' in html and 'data-call-status="review"' in html
    assert "a person approves every call of lookup" in html
    task = ReviewTask.objects.get(run=run, node_id="agent")
    membership = Membership.objects.get(user=reviewer_user, workspace=workspace)
    task_decide(task=task, actor=reviewer_user, membership=membership, decision="approve")
    advance(run.id)
    html = builder_client.get(f"/w/{workspace.slug}/runs/{run.id}/").content.decode()
    assert 'data-call-status="succeeded"' in html and reviewer_user.username in html
    decision = builder_client.get(f"/w/{workspace.slug}/audit/decisions/{run.id}/agent/")
    assert decision.status_code == 200
    text = decision.content.decode()
    assert "The agent&#x27;s calls, one by one" in text or "The agent's calls" in text
    assert "Reviewed by <strong>" in text and "lookup" in text


def test_several_calls_in_one_turn_run_in_order_each_decided_by_the_policy(
    workspace, builder_user, admin_user, model_service
):
    edit_policy(workspace, admin_user, denied_tools='{"summary"}')
    flow = agent_flow(
        workspace, builder_user, tools=[LOOKUP, SUMMARY_BLOCK], parallel_tool_calls=True
    )
    run = start(flow)
    assert run.status == "succeeded", run.error
    calls = list(AgentCall.objects.filter(run=run).order_by("turn", "index"))
    # One model answer asked for both: one turn, two calls, each its own record and key.
    assert [(call.turn, call.index) for call in calls] == [(0, 0), (0, 1)]
    assert len({call.key for call in calls}) == 2
    by_tool = {call.tool: call for call in calls}
    assert by_tool["lookup"].status == "succeeded"
    assert by_tool["lookup"].decision["action"] == "allow"
    assert by_tool["summary"].status == "denied" and by_tool["summary"].output is None
    assert by_tool["summary"].decision["action"] == "deny"
    assert (
        by_tool["summary"].error
        == "denied by policy: agents may not call summary in this workspace"
    )
    step = agent_step(run)
    # Both results went back to the model in the next turn, which answered.
    assert step.port == "out" and step.output["calls"] == 2
    assert step.meta["turns"] == 2 and step.meta["end"] == "answered"
    assert [item["tool"] for item in step.meta["calls"]] == [call.tool for call in calls]


def test_a_denied_call_is_reported_to_the_model_as_the_tools_result(
    workspace, builder_user, admin_user, model_service
):
    edit_policy(workspace, admin_user, denied_tools='{"lookup"}')
    run = start(agent_flow(workspace, builder_user))
    assert run.status == "succeeded", run.error
    (call,) = AgentCall.objects.filter(run=run)
    assert call.status == "denied" and call.output is None
    assert call.error == "denied by policy: agents may not call lookup in this workspace"
    assert call.decision["action"] == "deny"
    assert agent_step(run).port == "out"


def test_review_parks_the_agent_until_a_person_approves_the_call(
    workspace, builder_user, admin_user, reviewer_user, model_service
):
    edit_policy(workspace, admin_user, review_tools='{"lookup"}')
    run = start(agent_flow(workspace, builder_user))
    assert run.status == "waiting"
    (call,) = AgentCall.objects.filter(run=run)
    assert call.status == "review" and call.decision["action"] == "review"
    task = ReviewTask.objects.get(run=run, node_id="agent")
    assert task.title == "Agent wants to call lookup" and task.call_key == call.key
    assert task.data["arguments"] == call.arguments
    membership = Membership.objects.get(user=reviewer_user, workspace=workspace)
    task_decide(
        task=task, actor=reviewer_user, membership=membership, decision="approve", comment="ok"
    )
    advance(run.id)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    call.refresh_from_db()
    assert call.status == "succeeded" and call.reviewer == reviewer_user.username
    step = agent_step(run)
    assert step.meta["reviewer"] == reviewer_user.username
    assert step.meta["calls"][0]["reviewer"] == reviewer_user.username


def test_a_rejected_call_is_reported_as_denied(
    workspace, builder_user, admin_user, reviewer_user, model_service
):
    edit_policy(workspace, admin_user, review_tools='{"lookup"}')
    run = start(agent_flow(workspace, builder_user))
    task = ReviewTask.objects.get(run=run, node_id="agent")
    membership = Membership.objects.get(user=reviewer_user, workspace=workspace)
    task_decide(
        task=task,
        actor=reviewer_user,
        membership=membership,
        decision="reject",
        comment="not this customer",
    )
    advance(run.id)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    (call,) = AgentCall.objects.filter(run=run)
    assert call.status == "denied"
    assert call.error == f"rejected by {reviewer_user.username}: not this customer"


def summarise_flow(workspace, builder):
    return published_flow(
        workspace,
        builder,
        definition(
            [
                node("start", "trigger.manual", sample={"note": "text"}),
                node("sum", "transform.set", values={"summary": "'one order, shipped'"}),
            ],
            [("start", "sum")],
            name="Summarise",
        ),
        name="Summarise",
    )


def test_a_sub_flow_tool_is_a_child_run_and_a_retry_never_repeats_a_finished_call(
    workspace, builder_user, model_service
):
    from apps.mlmodels.agent import AIAgentBlock
    from apps.runs.engine.context import StepContext

    summarise_flow(workspace, builder_user)
    flow = agent_flow(workspace, builder_user, tools=[SUMMARY])
    run = start(flow)
    assert run.status == "waiting", run.error["message"]
    (call,) = AgentCall.objects.filter(run=run)
    assert (call.kind, call.target, call.status) == ("flow", "summarise", "running")
    child = Run.objects.get(parent_run=run)
    assert str(child.id) == call.child_run_id and child.parent_node == "agent"
    advance(child.id)
    advance(run.id)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    call.refresh_from_db()
    assert call.status == "succeeded"
    assert call.output == {"output": {"summary": "one order, shipped"}}
    # Executing the step again (a crash before its outcome was stored, a retry) replays
    # the recorded turn: no second child run, the call's record is untouched.
    step = agent_step(run)
    context = StepContext(
        workspace_id=workspace.id,
        run_id=run.id,
        node_id="agent",
        attempt=2,
        correlation_id=run.correlation_id,
        dry_run=False,
        scope={"trigger": {"body": ORDER}, "steps": {}, "vars": {}, "env": {}},
        services={},
    )
    flow_node = next(n for n in flow.latest_version.definition["nodes"] if n["id"] == "agent")
    again = AIAgentBlock().execute(context, AgentConfig.model_validate(flow_node["config"]), None)
    assert again.port == "out" and again.output["calls"] == 1
    assert Run.objects.filter(parent_run=run).count() == 1
    assert AgentCall.objects.get(pk=call.pk).finished_at == call.finished_at
    assert again.meta["calls"] == step.meta["calls"]


def test_running_out_of_steps_or_tokens_takes_the_exhausted_port(
    workspace, builder_user, model_service
):
    summarise_flow(workspace, builder_user)
    run = start(agent_flow(workspace, builder_user, tools=[LOOKUP, SUMMARY], max_steps=1))
    if run.status == "waiting":  # the toy called the sub-flow first
        advance(Run.objects.get(parent_run=run).id)
        advance(run.id)
        run.refresh_from_db()
    assert run.status == "succeeded", run.error
    step = agent_step(run)
    assert step.port == "exhausted"
    assert step.output["reason"] == "steps" and step.output["calls"] == 1
    assert step.meta["end"] == "steps exhausted"
    assert StepRun.objects.get(run=run, node_id="tired").output == {"why": "steps"}

    tokens = start(agent_flow(workspace, builder_user, token_budget=100))
    step = agent_step(tokens)
    assert step.port == "exhausted" and step.output["reason"] == "tokens"
    assert step.output["calls"] == 0 and not AgentCall.objects.filter(run=tokens).exists()


@pytest.mark.parametrize(
    ("agent", "message"),
    [
        ({"model": "no-such-model"}, "no-such-model"),
        ({"goal": "x" * 2100}, "context length"),
    ],
)
def test_bad_input_fails_the_step_at_once_with_the_reason(
    workspace, builder_user, model_service, agent, message
):
    run = start(agent_flow(workspace, builder_user, **agent))
    assert run.status == "failed"
    step = agent_step(run)
    assert message in step.error["message"] and step.error["class"] == "permanent"


@pytest.mark.parametrize(
    ("tools", "message"),
    [
        ([{"name": "wait", "block": "human.approval"}], "cannot be an agent's tool"),
        ([{"name": "x", "block": "nope"}], "there is no block 'nope'"),
        ([LOOKUP, LOOKUP], "tool names must be unique"),
        ([{"name": "both", "block": "transform.set", "flow": "f"}], "either a block or a flow"),
    ],
)
def test_tools_are_checked_when_the_flow_is_built(tools, message):
    with pytest.raises(ValueError, match=message):
        AgentConfig.model_validate({"model": SUPPORT_WRITER, "goal": "g", "tools": tools})


def test_block_tool_parameters_are_derived_from_the_blocks_config():
    from apps.mlmodels.agent import derived_parameters

    derived = derived_parameters("connector.http", {"method": "GET"})
    assert "method" not in derived["properties"]
    assert derived["properties"]["url"]["type"] == "string"


def test_a_published_flow_is_offered_with_a_schema_from_its_sample_input(workspace, builder_user):
    from apps.runs.agent_calls import AgentCallService

    summarise_flow(workspace, builder_user)
    found = AgentCallService(str(workspace.id)).flow_tool(slug="summarise", version=None)
    assert found["version"] == 1 and found["side_effect"] is False
    assert found["parameters"] == {"type": "object", "properties": {"note": {"type": "string"}}}
    with pytest.raises(LookupError, match="no published version 7"):
        AgentCallService(str(workspace.id)).flow_tool(slug="summarise", version=7)


def test_an_outside_provider_gets_the_standard_tools_format_and_several_calls_run_in_order(
    workspace, admin_user, builder_user, settings
):
    from apps.connectors.services import connection_create
    from apps.dashboard import rollups, selectors
    from tests.support.openai_provider import OpenAIProvider

    settings.FLOWGATE = {**settings.FLOWGATE, "SSRF_ALLOWLIST": ["127.0.0.1"]}
    provider = OpenAIProvider(
        [[("lookup", {"order_id": 7}), ("lookup", {"order_id": "x"})], "Order 7 has shipped."]
    )
    try:
        connection_create(
            workspace=workspace,
            actor=admin_user,
            name="outside",
            type="llm_openai",
            config={"base_url": provider.url, "default_model": "outside-model"},
            secrets={"api_key": "sk-test"},
        )
        run = start(agent_flow(workspace, builder_user, model="", connection="outside"))
    finally:
        provider.close()
    assert run.status == "succeeded", run.error
    step = agent_step(run)
    assert step.output["answer"] == "Order 7 has shipped." and step.output["calls"] == 2
    assert step.meta["provider"] == "connection:outside" and step.meta["provider_policy"]
    first, second = (request["body"] for request in provider.requests)
    assert first["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": LOOKUP["description"],
                "parameters": LOOKUP["parameters"],
            },
        }
    ]
    assistant, *results = second["messages"][1:]
    assert [call["id"] for call in assistant["tool_calls"]] == ["call_0", "call_1"]
    assert results[0] == {
        "role": "tool",
        "tool_call_id": "call_0",
        "content": '{"order": 7, "state": "shipped"}',
    }
    # Arguments that do not match the tool's schema are the call's error, told to the model.
    assert results[1]["content"].startswith("ERROR: invalid arguments: 'x' is not of type")
    calls = list(AgentCall.objects.filter(run=run))
    assert [(c.index, c.status) for c in calls] == [(0, "succeeded"), (1, "failed")]
    # The dashboard counts the agent's model calls with the other AI steps.
    rollups.materialise()
    figures = selectors.dashboard_figures(workspace=workspace, range_name="1h")["ai"]
    assert figures["calls"] == 1 and figures["tokens"] == 36


def test_a_flow_tool_that_is_not_published_is_a_problem_before_publishing(workspace, builder_user):
    from apps.flows.preflight import flow_problems
    from apps.flows.selectors import subflows_called

    tools = [LOOKUP, {"name": "summary", "flow": "summarise"}]
    agent = {"model": SUPPORT_WRITER, "goal": "g", "tools": tools}
    flow = definition(
        [node("start", "trigger.manual"), node("agent", "ai.agent", **agent)],
        [("start", "agent")],
    )
    assert subflows_called(flow) == {"summarise"}  # publishing checks it for cycles too
    problems = flow_problems(workspace_id=workspace.id, definition=flow)
    assert [(p.node, p.field, p.message) for p in problems] == [
        (
            "agent",
            "tools",
            "there is no published flow 'summarise' in this workspace for the agent's tool",
        )
    ]
    summarise_flow(workspace, builder_user)
    assert flow_problems(workspace_id=workspace.id, definition=flow) == []


def test_a_flow_tool_removed_after_publishing_fails_the_step_with_the_reason(
    workspace, builder_user, model_service
):
    from apps.flows.models import Flow

    summarise_flow(workspace, builder_user)
    flow = agent_flow(workspace, builder_user, tools=[SUMMARY])
    Flow.objects.filter(workspace=workspace, slug="summarise").delete()
    run = start(flow)
    assert run.status == "failed"
    step = agent_step(run)
    assert step.error["message"] == "tool summary: there is no flow 'summarise' in this workspace"
    assert step.error["class"] == "permanent"
