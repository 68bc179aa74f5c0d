"""Refuse recursive policies before anything evaluates them.

Rego forbids recursion (OPA refuses it at compile time), but regorus 0.x accepts a function
that calls itself and, on an input that makes it recurse deeply enough, overflows the native
stack: a segfault no ``try`` can catch, taking the web or worker process with it. A
policy's tests cannot prove the absence of such an input, so the dependency graph of its
rules and functions is checked statically instead: any cycle is a compile error. The check
is conservative (a local variable named like a rule of a cycle counts as a reference), as
OPA's is; it runs once per version, when a policy is compiled.
"""

from __future__ import annotations

import json
from typing import Any


def recursion_cycle(ast_json: str, package: str) -> tuple[list[str], int, int] | None:
    """The first cycle of rules/functions calling each other in the policy whose syntax
    tree is ``ast_json`` (regorus ``get_ast_as_json``), with the line and column of its
    first rule; None when there is none."""
    package_path = package.split(".")
    calls: dict[str, set[str]] = {}
    places: dict[str, tuple[int, int]] = {}
    for module in json.loads(ast_json):
        for rule in module.get("ast", {}).get("rules", []):
            name, parts, span = _rule_parts(rule)
            if not name:
                continue
            places.setdefault(name, (span.get("line", 0), span.get("col", 0)))
            names: set[str] = set()
            _references(parts, package_path, names)
            calls.setdefault(name, set()).update(names - _locals(parts))
    for name in calls:
        calls[name] &= calls.keys()
    cycle = _find_cycle(calls)
    if cycle is None:
        return None
    return (cycle, *places[cycle[0]])


def _rule_parts(rule: dict[str, Any]) -> tuple[str, list[Any], dict[str, Any]]:
    """(name, every part except the name, span) of one rule."""
    kind, body = next(iter(rule.items()))
    head = body.get("head", {}) if kind == "Spec" else body
    inner = next(iter(head.values()), {}) if kind == "Spec" and head else head
    if not isinstance(inner, dict):
        return "", [], {}
    name = _root_name(inner.get("refr", {}))
    rest = {key: value for key, value in inner.items() if key != "refr"}
    parts = [rest, body.get("bodies", [])] if kind == "Spec" else [rest]
    return name, parts, body.get("span", {})


def _root_name(reference: dict[str, Any]) -> str:
    while "RefDot" in reference or "RefBrack" in reference:
        reference = next(iter(reference.values())).get("refr", {})
    return str(reference["Var"]["value"]) if "Var" in reference else ""


def _dotted(reference: dict[str, Any]) -> list[str]:
    """``data.a.b`` as ["data", "a", "b"] (empty when it is not a plain dotted name)."""
    fields: list[str] = []
    while "RefDot" in reference:
        dot = reference["RefDot"]
        fields.insert(0, str(dot.get("field", ["", ""])[-1]))
        reference = dot.get("refr", {})
    return [str(reference["Var"]["value"]), *fields] if "Var" in reference else []


def _references(node: Any, package_path: list[str], names: set[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _references(item, package_path, names)
        return
    if not isinstance(node, dict):
        return
    if isinstance(node.get("Var"), dict):
        names.add(str(node["Var"].get("value", "")))
        return
    if "RefDot" in node:
        dotted = _dotted(node)
        prefix = ["data", *package_path]
        if dotted[: len(prefix)] == prefix and len(dotted) > len(prefix):
            names.add(dotted[len(prefix)])
    for key, value in node.items():
        if key != "span":
            _references(value, package_path, names)


def _locals(parts: list[Any]) -> set[str]:
    """Function arguments and ``x := ...`` targets: names that are not rule references."""
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
        elif isinstance(node, dict):
            for argument in node.get("args", []) or []:
                if isinstance(argument, dict) and isinstance(argument.get("Var"), dict):
                    found.add(str(argument["Var"]["value"]))
            assign = node.get("AssignExpr")
            if isinstance(assign, dict) and isinstance(assign.get("lhs", {}).get("Var"), dict):
                found.add(str(assign["lhs"]["Var"]["value"]))
            for value in node.values():
                visit(value)

    visit(parts)
    return found


def _find_cycle(calls: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for callee in sorted(calls.get(name, ())):
            if state.get(callee) == 1:
                return [*path[path.index(callee) :], callee]
            if callee not in state and (cycle := visit(callee)):
                return cycle
        path.pop()
        state[name] = 2
        return None

    for name in sorted(calls):
        if name not in state and (cycle := visit(name)):
            return cycle
    return None
