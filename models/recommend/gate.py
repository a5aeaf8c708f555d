"""Promotion and publishing gates: pure decisions over metric dictionaries, each saying why.

A candidate is promoted only when it beats the best baseline on NDCG@10, does not
fall more than a margin below the promoted model's NDCG@10 (as recorded when that
model was evaluated), and its lists pass the output floors (fallback share, catalogue
coverage, diversity). The output floors are checked again on the lists that scoring
is about to write, so nothing that breaches them reaches the storefront. Diversity is
measured by what the catalogue has (category, else brand); a catalogue with neither
skips that floor, and the decision says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from models.recommend.metrics import DiversityBasis
from shopml.config.recommend import GateConfig
from shopml.errors import PermanentError

GATE_METRIC = "ndcg@10"
BY_CATEGORY = DiversityBasis("category", "diversity measured by category")


class OutputGateError(PermanentError, RuntimeError):
    """Scored lists breach the output floors; nothing was written."""


@dataclass(frozen=True)
class GateDecision:
    promoted: bool
    reason: str
    best_baseline: str
    best_baseline_value: float
    current_value: float | None
    diversity: str = BY_CATEGORY.reason
    serve: str = "model"
    serve_reason: str = "the promoted version"

    def as_dict(self) -> dict:
        return asdict(self)


def check_output(
    metrics: dict[str, float], gate: GateConfig, top_k: int, diversity: DiversityBasis = BY_CATEGORY
) -> list[str]:
    """Breaches of the output floors, as sentences (empty when the lists may be published).

    The diversity floor applies only when ``diversity`` says the catalogue lets it be measured.
    """
    breaches = []
    if metrics["fallback_share"] > gate.max_fallback_share:
        breaches.append(
            f"share of users with an empty or fallback list {metrics['fallback_share']:.3f} "
            f"is above {gate.max_fallback_share:.3f}"
        )
    if metrics[f"coverage@{top_k}"] < gate.min_coverage:
        breaches.append(f"catalogue coverage {metrics[f'coverage@{top_k}']:.3f} is below {gate.min_coverage:.3f}")
    if diversity.measured and metrics[f"diversity@{top_k}"] < gate.min_diversity:
        by = "" if diversity.attribute == "category" else f" (by {diversity.attribute})"
        breaches.append(f"list diversity{by} {metrics[f'diversity@{top_k}']:.3f} is below {gate.min_diversity:.3f}")
    return breaches


def decide_promotion(
    candidate: dict[str, float],
    baselines: dict[str, dict[str, float]],
    current: float | None,
    gate: GateConfig,
    top_k: int,
    diversity: DiversityBasis = BY_CATEGORY,
    servable: tuple[str, ...] = (),
) -> GateDecision:
    """Whether the candidate replaces the promoted model, and why (or why not); and what is served.

    A promoted candidate is served. Otherwise the best ``servable`` baseline is, when a
    baseline beat the candidate or nothing was promoted before: it was measured on this
    week, the promoted version was not. When diversity was measured by something other
    than category, or not at all (``diversity``), the reason says so and why.
    """
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
    refusals += [f"output gate: {breach}" for breach in check_output(candidate, gate, top_k, diversity)]
    if refusals:
        reason = "not promoted: " + "; ".join(refusals)
    else:
        versus = "no model was promoted before" if current is None else f"promoted model had {current:.4f}"
        reason = f"promoted: {GATE_METRIC} {value:.4f} beats {best_name} ({best:.4f}); {versus}"
    if diversity.attribute != "category":
        # By brand, or not at all: say why, so a shop without categories reads what its gate checked.
        reason = f"{reason}; {diversity.reason}"
    serve, serve_reason = "model", "the promoted version"
    candidates = {name: metrics[GATE_METRIC] for name, metrics in baselines.items() if name in servable}
    best_servable = max(candidates, key=candidates.get) if candidates else None
    if refusals and best_servable and (candidates[best_servable] >= value or current is None):
        serve = best_servable
        why = "it beat the candidate" if candidates[serve] >= value else "no version was promoted before"
        serve_reason = f"{serve} ({GATE_METRIC} {candidates[serve]:.4f} vs the candidate's {value:.4f}): {why}"
    return GateDecision(not refusals, reason, best_name, best, current, diversity.reason, serve, serve_reason)
