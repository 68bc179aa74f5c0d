"""Trigger blocks: how a run starts. Each turns its delivery into the run's ``trigger``.

Every trigger's output has a ``body`` (the payload) so expressions read ``trigger.body.x``
whatever started the run.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from apps.blocks.base import Activation, Block, BlockConfig, BlockContext, FlowAddress, Result


def envelope(body: Any, **extra: Any) -> dict[str, Any]:
    """The shape of every run's input: the payload under ``body`` plus delivery details."""
    return {"body": body, **extra}


def cron_schedule(cron: str) -> Any:
    """A five-field cron (minute hour day-of-month month day-of-week) as a Celery crontab."""
    from celery.schedules import crontab

    minute, hour, day_of_month, month_of_year, day_of_week = cron.split()
    return crontab(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
    )


class SampleInput(BlockConfig):
    """An example input: the editor's test run starts with it, people starting a run see it."""

    sample: dict[str, Any] = Field(
        default_factory=dict, description="Example input, used by the editor's test runs."
    )


class WebhookConfig(SampleInput):
    mode: Literal["sync", "async"] = Field(
        default="async",
        description=(
            "sync: the caller waits for the flow's response, up to the timeout (202 with the "
            "run's URL if it takes longer or waits for a person); async: 202 at once."
        ),
    )
    auth: Literal["token", "hmac"] = Field(
        default="token",
        description=(
            "token: the secret URL is enough; hmac: also require a Standard Webhooks "
            "signature made with the flow's signing secret (the flow's Webhook page)."
        ),
    )
    timeout_seconds: float = Field(
        default=10,
        gt=0,
        le=60,
        description="sync mode: how long the caller waits for the response.",
    )


class WebhookTrigger(Block):
    """Start the flow when an HTTP request arrives at its webhook URL."""

    key = "trigger.webhook"
    title = "Webhook"
    category = "trigger"
    icon = "webhook"
    Config = WebhookConfig

    @classmethod
    def activation(cls, config: WebhookConfig, flow: FlowAddress) -> Activation:
        settings = config.model_dump(include={"mode", "auth", "timeout_seconds"})
        return Activation("webhook", flow.webhook_token, settings)

    def execute(self, ctx: BlockContext, config: WebhookConfig, input: Any) -> Result:
        return Result(output=input)


class ScheduleConfig(BlockConfig):
    cron: str = Field(description="Five fields: minute hour day-of-month month day-of-week.")
    timezone: str = Field(default="UTC")
    body: dict[str, Any] = Field(default_factory=dict, description="The payload each run receives.")

    @field_validator("cron")
    @classmethod
    def cron_is_valid(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError("a cron expression has five fields, e.g. '*/15 * * * *'")
        try:
            cron_schedule(value)
        except (ValueError, TypeError) as error:
            raise ValueError(f"invalid cron expression: {error}") from None
        return value

    @field_validator("timezone")
    @classmethod
    def timezone_is_known(cls, value: str) -> str:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class ScheduleTrigger(Block):
    """Start the flow on a schedule (cron), from Celery beat."""

    key = "trigger.schedule"
    title = "Schedule"
    category = "trigger"
    icon = "calendar"
    Config = ScheduleConfig

    @classmethod
    def activation(cls, config: ScheduleConfig, flow: FlowAddress) -> Activation:
        return Activation("schedule", config.cron, config.model_dump())

    def execute(self, ctx: BlockContext, config: ScheduleConfig, input: Any) -> Result:
        return Result(output=input)


class ManualConfig(SampleInput):
    pass


class ManualTrigger(Block):
    """Start the flow by hand: a button, the API or the CLI, with JSON input."""

    key = "trigger.manual"
    title = "Manual"
    category = "trigger"
    icon = "hand"
    Config = ManualConfig

    def execute(self, ctx: BlockContext, config: ManualConfig, input: Any) -> Result:
        return Result(output=input)


TRIGGER_BLOCKS = (WebhookTrigger, ScheduleTrigger, ManualTrigger)
