"""The app shell's main navigation. Apps do not edit templates to appear here."""

from __future__ import annotations

from dataclasses import dataclass

from apps.accounts.permissions import Capability


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    capability: Capability
    icon: str


MAIN_NAVIGATION: tuple[NavItem, ...] = (
    NavItem("Flows", "flows:list", Capability.VIEW_FLOWS, "flow"),
    NavItem("Runs", "runs:list", Capability.VIEW_RUNS, "play"),
    NavItem("Inbox", "inbox:list", Capability.VIEW_RUNS, "inbox"),
    NavItem("Models", "mlmodels:list", Capability.VIEW_MODELS, "cube"),
    NavItem("Policies", "policies:list", Capability.VIEW_POLICIES, "shield"),
    NavItem("Dashboard", "dashboard:list", Capability.VIEW_RUNS, "chart"),
    NavItem("Audit", "audit:list", Capability.VIEW_AUDIT, "scroll"),
    NavItem("Settings", "settings:index", Capability.VIEW_FLOWS, "gear"),
)
