"""A builder gets one precise problem per mistake, tied to the node and field."""

from __future__ import annotations

from apps.flows.definition import validate_definition
from tests.runs.helpers import definition, node


def messages(flow: dict) -> list[tuple]:
    return [(p.node, p.field, p.message) for p in validate_definition(flow)]


def test_a_valid_flow_has_no_problems():
    flow = definition(
        [
            node("start", "trigger.manual"),
            node("calc", "transform.set", values={"a": "trigger.body.x + 1"}),
        ],
        [("start", "calc")],
    )
    assert validate_definition(flow) == []


def test_every_problem_is_listed_with_its_node_and_field():
    flow = definition(
        [
            node("start", "trigger.manual"),
            node("mystery", "does.not_exist"),
            node("calc", "transform.set"),
            node("bad_expr", "transform.set", values={"a": "trigger.body.x +"}),
            node("orphan", "transform.set", values={"a": "1"}),
        ],
        [("start", "calc"), ("start", "bad_expr"), ("calc", "ghost")],
    )
    problems = messages(flow)
    assert ("mystery", "type", "unknown block type 'does.not_exist'") in problems
    assert ("calc", "values", "is required") in problems
    assert any(
        p[0] == "bad_expr" and p[1] == "values.a" and "cannot parse" in p[2] for p in problems
    )
    assert any(p[0] == "calc" and "ghost" in p[2] for p in problems)
    assert ("orphan", None, "this node cannot be reached from the trigger") in problems


def test_a_cycle_is_refused():
    flow = definition(
        [
            node("start", "trigger.manual"),
            node("a", "transform.set", values={"x": "1"}),
            node("b", "transform.set", values={"x": "2"}),
        ],
        [("start", "a"), ("a", "b"), ("b", "a")],
    )
    assert any("cycle" in p[2] for p in messages(flow))


def test_an_edge_must_name_an_existing_port():
    flow = definition(
        [
            node("start", "trigger.manual"),
            node("check", "logic.branch", condition="true"),
            node("a", "transform.set", values={"x": "1"}),
        ],
        [("start", "check"), ("check", "a", "maybe")],
    )
    assert any(p[0] == "check" and "no output port 'maybe'" in p[2] for p in messages(flow))


def test_exactly_one_trigger_is_required():
    flow = definition([node("a", "transform.set", values={"x": "1"})])
    assert any("exactly one trigger" in p[2] for p in messages(flow))


def test_unknown_config_keys_and_node_settings_are_reported():
    flow = definition(
        [
            {
                "id": "start",
                "type": "trigger.manual",
                "config": {"typo": 1},
                "retry": {"max_attempts": 0},
            },
        ]
    )
    problems = messages(flow)
    assert ("start", "typo", "is not a setting of this block") in problems


def test_switch_ports_come_from_its_cases():
    flow = definition(
        [
            node("start", "trigger.manual"),
            node(
                "route",
                "logic.switch",
                cases=[{"port": "vip", "condition": "trigger.body.vip == true"}],
            ),
            node("a", "transform.set", values={"x": "1"}),
            node("b", "transform.set", values={"x": "2"}),
        ],
        [("start", "route"), ("route", "a", "vip"), ("route", "b", "default")],
    )
    assert validate_definition(flow) == []
