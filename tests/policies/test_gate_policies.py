"""The shipped gate policies on inputs their own test cases leave out, on both backends:
what a publisher or a promoter is told, reason by reason."""

from __future__ import annotations

from apps.policies.defaults import shipped
from apps.policies.engine import PolicySource, evaluate


def gate_decision(backend, slug: str, input: dict) -> dict:
    policy = shipped(slug)
    decision = evaluate(
        PolicySource.from_text(slug=policy.slug, source=policy.source),
        "decision",
        input,
        backend=backend,
    )
    assert not decision.error, decision.error
    return decision.result


def http_node(node_id: str, url: str | None) -> dict:
    config = {} if url is None else {"url": url}
    return {"id": node_id, "type": "connector.http", "config": config}


def publish(backend, *nodes: dict, role: str = "builder") -> dict:
    return gate_decision(
        backend,
        "flow_publish",
        {"definition": {"nodes": list(nodes)}, "actor": role, "actor_role": role},
    )


def test_every_http_node_is_judged_even_one_without_a_url(backend):
    decision = publish(
        backend,
        http_node("a", "https://a.test/x"),
        http_node("b", "https://b.test/y"),
        http_node("c", None),
    )
    assert decision == {
        "allow": False,
        "reasons": [
            "node a calls a.test, which is not on the allow-list",
            "node b calls b.test, which is not on the allow-list",
            "node c calls a URL that is not a fixed address",
            "an admin must publish this flow",
        ],
    }


def test_host_is_read_case_insensitively_and_through_quotes_ports_and_queries(backend):
    decision = publish(
        backend,
        http_node("upper", "https://API.Example.com/v1"),
        http_node("quoted", '"https://hooks.slack.com/services/x"'),
        http_node("port", "http://ledger.internal.example.com:8443/book"),
        http_node("query", "https://api.example.com?x=1"),
    )
    assert decision["allow"] is True
    assert decision["reasons"] == ["no HTTP calls outside the allow-list and no PII fields"]


def test_templated_or_non_http_urls_are_not_fixed_addresses(backend):
    decision = publish(
        backend,
        http_node("template", "{{ base_url }}/tickets"),
        http_node("ftp", "ftp://files.example.com/"),
        http_node("scheme", "HTTPS://api.example.com/"),
    )
    assert decision["reasons"] == [
        "node ftp calls a URL that is not a fixed address",
        "node scheme calls a URL that is not a fixed address",
        "node template calls a URL that is not a fixed address",
        "an admin must publish this flow",
    ]


def test_pii_fields_the_app_found_need_an_admin_and_are_named_in_order(backend):
    def decide(fields, role):
        return gate_decision(
            backend,
            "flow_publish",
            {"definition": {"nodes": []}, "actor_role": role, "pii_fields": fields},
        )

    assert decide(["ssn", "email"], "builder") == {
        "allow": False,
        "reasons": [
            "the flow handles fields marked PII: email, ssn",
            "an admin must publish this flow",
        ],
    }
    assert decide(["ssn", "email"], "admin")["allow"] is True
    assert decide([], "builder")["allow"] is True


def test_a_definition_without_nodes_is_published(backend):
    decision = gate_decision(backend, "flow_publish", {"definition": {}, "actor_role": "builder"})
    assert decision["allow"] is True


PROMOTION = shipped("model_promotion").tests[0].input


def promote(backend, **changes) -> dict:
    return gate_decision(backend, "model_promotion", {**PROMOTION, **changes})


def test_missing_and_low_metrics_are_reported_in_threshold_name_order(backend):
    decision = promote(
        backend,
        metrics={"auc": 0.7, "recall": 0.9},
        thresholds={"accuracy": 0.8, "auc": 0.85, "f1": 0.5, "recall": 0.9},
    )
    assert decision == {
        "allow": False,
        "reasons": [
            "metric accuracy is missing",
            "metric auc = 0.7 is below 0.85",
            "metric f1 is missing",
        ],
    }


def test_a_metric_equal_to_its_threshold_or_given_as_text_passes(backend):
    decision = promote(backend, metrics={"auc": "0.9", "recall": 0.7})
    assert decision == {"allow": True, "reasons": ["all checks passed"]}


def test_empty_signature_and_empty_checksums_do_not_pass(backend):
    decision = promote(backend, has_signature="", artifact_sha256="", expected_sha256="")
    assert decision["reasons"] == [
        "the model version has no signature",
        "the artifact checksum does not match the registered one",
    ]
