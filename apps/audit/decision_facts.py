"""What other apps add to the page that explains one decision.

The audit trail records decisions from any app; the apps that know more about them (the
run a decision belongs to, the policy version it names) register a provider here in their
``AppConfig.ready``, so the audit views import none of them. A provider takes the
workspace and the decision record's data and returns template facts; it may raise
``Http404`` (the run is not in this workspace).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DecisionFacts = Callable[[Any, dict[str, Any]], dict[str, Any]]
_providers: list[DecisionFacts] = []


def register_decision_facts(provider: DecisionFacts) -> None:
    _providers.append(provider)


def decision_facts(*, workspace: Any, data: dict[str, Any]) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for provider in _providers:
        facts.update(provider(workspace, data))
    return facts
