"""Where alerts go and when a nightly run counts as late (shopml/notify.py sends them)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class NotifyConfig(BaseModel):
    """Where alerts go and when a nightly run counts as late."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook_url: SecretStr = Field(
        SecretStr(""),
        description="Webhook used when the Airflow connection is absent; empty: alerts go to the file only.",
    )
    webhook_conn_id: str = Field(
        "shopml_alerts", description="Airflow connection whose `url` extra or schema/host/port name the webhook."
    )
    timeout_s: float = Field(5.0, gt=0, description="Connect and read timeout of one webhook POST.")
    deadline_reference: Literal["queued_at", "logical_date"] = Field(
        "queued_at",
        description=(
            "What the deadline counts from. queued_at suits backfills and reruns, whose logical dates lie "
            "in the past and would miss a logical-date deadline at once."
        ),
    )
    deadline_hours: float = Field(
        6.0, ge=0, description="A run still unfinished this long after the reference alerts; 0 switches it off."
    )
