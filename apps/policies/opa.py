"""The OPA server backend: the only module that talks to OPA (through opa-python-client).

Each published version is pushed with the Policy API under the id ``flowgate/<version>``
with its package renamed to ``flowgate.v<version>``: OPA has one global package namespace,
so two versions (or two workspaces' policies) with the same package would otherwise
conflict. Evaluation posts the input to the Data API at ``/v1/data/flowgate/v<version>/<rule>``.
A version OPA does not know (the server restarted) is pushed again and the query retried.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from opa_client.errors import RegoParseError
from opa_client.opa import OpaClient

from .engine import PACKAGE_LINE, PolicyError, PolicySource


def deployed_package(policy: PolicySource) -> str:
    return f"flowgate.v{policy.version}"


def deployed_source(policy: PolicySource) -> str:
    return PACKAGE_LINE.sub(f"package {deployed_package(policy)}", policy.source, count=1)


class OpaServerBackend:
    """Evaluates through an OPA server's REST API."""

    name = "opa"

    def __init__(self, url: str, *, timeout: float | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PolicyError(f"OPA_URL {url!r} is not an http(s) URL")
        self.url = url
        self._client = OpaClient(
            host=parts.hostname,
            port=parts.port or (443 if parts.scheme == "https" else 80),
            ssl=parts.scheme == "https",
            retries=0,
            timeout=timeout or settings.FLOWGATE.get("POLICY_TIMEOUT_MS", 1000) / 1000,
        )
        self._pushed: set[str] = set()
        self._lock = threading.Lock()

    def publish(self, policy: PolicySource) -> None:
        try:
            self._client.update_policy_from_string(
                deployed_source(policy), f"flowgate/{policy.version}", rego_compat=False
            )
        except RegoParseError as error:
            raise PolicyError(f"OPA rejected the policy: {error.message}") from None
        except requests.RequestException as error:
            raise PolicyError(f"OPA server unreachable: {type(error).__name__}") from None
        except ValueError as error:  # a non-JSON error body
            raise PolicyError(f"OPA server answered with an unreadable error: {error}") from None
        with self._lock:
            self._pushed.add(policy.version)

    def value(self, policy: PolicySource, rule: str, input: dict[str, Any]) -> Any:
        if policy.version not in self._pushed:
            self.publish(policy)
        response = self._query(policy, rule, input)
        if "result" not in response:
            # Either the rule is undefined for this input or OPA lost the policy: push again.
            self.publish(policy)
            response = self._query(policy, rule, input)
        return response.get("result")

    def _query(self, policy: PolicySource, rule: str, input: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._client.query_rule(
                input_data=input, package_path=deployed_package(policy), rule_name=rule
            )
        except requests.HTTPError as error:
            status = error.response.status_code if error.response is not None else "an error"
            raise PolicyError(f"OPA answered {status}") from None
        except requests.RequestException as error:
            raise PolicyError(f"OPA server unreachable: {type(error).__name__}") from None

    def healthy(self) -> bool:
        return bool(self._client.check_health())
