"""Published flows that outside agents may call as MCP tools (``server.py``)."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from apps.core.models import WorkspaceOwned

# What MCP clients accept as a tool name.
TOOL_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class FlowTool(WorkspaceOwned):
    """An admin's choice to expose a flow's published version as an MCP tool.

    ``name`` is what agents call (unique in the workspace); ``description`` is what the
    model reads to decide whether to call it; ``input_schema`` is the JSON Schema of the
    tool's arguments (empty: derived from the trigger's ``sample``). A tool is listed only
    while ``enabled`` and its flow is published and not archived. Each call is a run of
    the latest published version (trigger ``mcp``), after the ``mcp_tool_call`` gate.
    """

    flow = models.OneToOneField("flows.Flow", on_delete=models.CASCADE, related_name="mcp_tool")
    enabled = models.BooleanField(default=False)
    name = models.CharField(max_length=64, validators=[RegexValidator(TOOL_NAME_PATTERN)])
    description = models.TextField(max_length=2000)
    input_schema = models.JSONField(default=dict, blank=True)
    timeout_seconds = models.FloatField(
        default=30.0, validators=[MinValueValidator(1), MaxValueValidator(300)]
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "name"], name="mcp_tool_name_per_workspace"
            )
        ]

    def __str__(self) -> str:
        return self.name
