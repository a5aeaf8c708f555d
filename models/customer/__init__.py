"""Customer scores: purchase propensity, churn risk and expected value per customer."""
