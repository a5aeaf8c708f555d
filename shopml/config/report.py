"""Knobs of the nightly run report (``jobs.report``), nested in the settings as ``report``.

Kept apart from the report module so that loading settings (DAG parse time) imports no pandas.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ReportConfig(BaseModel):
    """What the nightly report compares against and how much it plots."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trailing_days: int = Field(7, ge=1, description="Days before the run date that volumes are compared against.")
    max_feature_lag_days: int = Field(
        0, ge=0, description="Feature/scored tables whose latest date is older than run date minus this are stale."
    )
    primary_metrics: dict[str, str] = Field(
        default_factory=lambda: {"recommender": "ndcg@10", "forecaster": "wape", "customer": "churn.roc_auc"},
        description="Metric plotted over time per model (metric@k as in the gate); others are tabled only.",
    )
    history_runs: int = Field(30, ge=2, description="Evaluations shown in the metric-over-time plots.")
    lookback_days: int = Field(
        28, ge=7, description="Days looked back for actuals, forecast origins, the latest plan and feature dates."
    )
    past_origin_days: int = Field(
        7, ge=1, description="The past forecast compared with actuals is the latest made at least this many days ago."
    )
    top_skus: int = Field(4, ge=0, description="Best-selling SKUs (units over the lookback) plotted.")
    random_skus: int = Field(2, ge=0, description="Further SKUs plotted, drawn with a seed fixed per run date.")
    at_risk_rows: int = Field(10, ge=0, description="At-risk SKUs listed from the inventory plan.")
