"""Promotion and publishing gates: pure decisions over metric dictionaries, each saying why.

A candidate is promoted only when it beats the best baseline on NDCG@10, does not
fall more than a margin below the promoted model's NDCG@10 (as recorded when that
model was evaluated), and its lists pass the output floors (fallback share, catalogue
coverage, diversity). The output floors are checked again on the lists that scoring
is about to write, so nothing that breaches them reaches the storefront.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from models.recommend.config import GateConfig

GATE_METRIC = "ndcg@10"


class OutputGateError(RuntimeError):
    """Scored lists breach the output floors; nothing was written."""


@dataclass(frozen=True)
class GateDecision:
    promoted: bool
    reason: str
    best_baseline: str
    best_baseline_value: float
    current_value: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def check_output(metrics: dict[str, float], gate: GateConfig, top_k: int) -> list[str]:
    """Breaches of the output floors, as sentences (empty when the lists may be published)."""
    breaches = []
    if metrics["fallback_share"] > gate.max_fallback_share:
        breaches.append(
            f"share of users with an empty or fallback list {metrics['fallback_share']:.3f} "
            f"is above {gate.max_fallback_share:.3f}"
        )
    if metrics[f"coverage@{top_k}"] < gate.min_coverage:
        breaches.append(f"catalogue coverage {metrics[f'coverage@{top_k}']:.3f} is below {gate.min_coverage:.3f}")
    if metrics[f"diversity@{top_k}"] < gate.min_diversity:
        breaches.append(f"list diversity {metrics[f'diversity@{top_k}']:.3f} is below {gate.min_diversity:.3f}")
    return breaches


def decide_promotion(
    candidate: dict[str, float],
    baselines: dict[str, dict[str, float]],
    current: float | None,
    gate: GateConfig,
    top_k: int,
) -> GateDecision:
    """Whether the candidate replaces the promoted model, and why (or why not)."""
    value = candidate[GATE_METRIC]
    best_name, best_metrics = max(baselines.items(), key=lambda item: item[1][GATE_METRIC])
    best = best_metrics[GATE_METRIC]
    needed = best * (1.0 + gate.min_lift_over_baseline)
    refusals = []
    if not value > needed:
        refusals.append(
            f"{GATE_METRIC} {value:.4f} does not beat the best baseline {best_name} ({best:.4f}, needs > {needed:.4f})"
        )
    floor = None if current is None else current * (1.0 - gate.max_regression)
    if floor is not None and value < floor:
        refusals.append(
            f"{GATE_METRIC} {value:.4f} is more than {gate.max_regression:.0%} below the promoted model's "
            f"{current:.4f} (floor {floor:.4f})"
        )
    refusals += [f"output gate: {breach}" for breach in check_output(candidate, gate, top_k)]
    if refusals:
        reason = "not promoted: " + "; ".join(refusals)
    else:
        versus = "no model was promoted before" if current is None else f"promoted model had {current:.4f}"
        reason = f"promoted: {GATE_METRIC} {value:.4f} beats {best_name} ({best:.4f}); {versus}"
    return GateDecision(not refusals, reason, best_name, best, current)
