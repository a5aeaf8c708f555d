"""Knobs of the customer scores (purchase propensity, churn risk, expected value) and their gate."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# The horizons are the contract: they are in gold.customer_scores' column names.
PURCHASE_HORIZON_DAYS = 30
CHURN_HORIZON_DAYS = 90
VALUE_HORIZON_DAYS = 90


class CustomerBoosterConfig(BaseModel):
    """XGBoost hyper-parameters shared by the three heads (two classifiers, one Tweedie regression)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_estimators: int = Field(150, ge=1, description="Boosting rounds.")
    learning_rate: float = Field(0.05, gt=0, le=1, description="Shrinkage per round.")
    max_depth: int = Field(
        3,
        ge=1,
        description="Tree depth: RFM interactions are shallow; measured on the real shop, depth 4 lost 0.01 AUC.",
    )
    min_child_weight: float = Field(20.0, ge=0, description="Minimum summed hessian per leaf.")
    subsample: float = Field(0.8, gt=0, le=1, description="Row subsample per tree.")
    colsample_bytree: float = Field(0.9, gt=0, le=1, description="Feature subsample per tree.")
    n_jobs: int = Field(0, ge=0, description="CPU threads; 0 uses every core.")


class CustomerConfig(BaseModel):
    """How training sets are cut from the order history, and what a candidate must do to be promoted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    booster: CustomerBoosterConfig = Field(default_factory=CustomerBoosterConfig)
    min_history_days: int = Field(
        28,
        ge=1,
        description="Order history a snapshot needs before its as-of day: a head is trained only when its "
        "label horizon (twice: training labels, then the evaluation's) plus this much history has landed.",
    )
    snapshots: int = Field(
        8, ge=1, description="As-of days per training set, step_days apart: more customers at more life stages."
    )
    step_days: int = Field(7, ge=1, description="Days between two training snapshots (7: every weekday alike).")
    max_calibration_error: float = Field(
        0.05,
        gt=0,
        le=1,
        description="Expected calibration error (10 equal-count bins) a classifier may have and be promoted: "
        "the CRM reads the probabilities as rates.",
    )
    reasons: int = Field(3, ge=1, le=10, description="Feature contributions listed in top_reasons per customer.")
