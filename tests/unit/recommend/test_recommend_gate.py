"""Promotion gate and output floors."""

from __future__ import annotations

from models.recommend.config import GateConfig
from models.recommend.gate import check_output, decide_promotion

GATE = GateConfig(max_regression=0.05, max_fallback_share=0.5, min_coverage=0.1, min_diversity=0.2)


def _metrics(ndcg: float, fallback: float = 0.1, coverage: float = 0.5, diversity: float = 0.4) -> dict[str, float]:
    return {"ndcg@10": ndcg, "fallback_share": fallback, "coverage@20": coverage, "diversity@20": diversity}


BASELINES = {"global_popularity": _metrics(0.10), "als": _metrics(0.30)}


def test_promotes_a_model_that_beats_every_baseline():
    decision = decide_promotion(_metrics(0.35), BASELINES, None, GATE, 20)
    assert decision.promoted
    assert decision.best_baseline == "als"
    assert "no model was promoted before" in decision.reason


def test_refuses_a_model_that_does_not_beat_the_best_baseline():
    decision = decide_promotion(_metrics(0.25), BASELINES, None, GATE, 20)
    assert not decision.promoted
    assert "best baseline als (0.3000" in decision.reason


def test_margin_against_the_promoted_model():
    within = decide_promotion(_metrics(0.39), BASELINES, 0.40, GATE, 20)
    assert within.promoted, within.reason
    below = decide_promotion(_metrics(0.37), BASELINES, 0.40, GATE, 20)
    assert not below.promoted
    assert "more than 5% below the promoted model's 0.4000" in below.reason


def test_output_floors_block_promotion_and_publishing():
    breaches = check_output(_metrics(0.5, fallback=0.7, coverage=0.05, diversity=0.1), GATE, 20)
    assert len(breaches) == 3
    assert breaches[0].startswith("share of users with an empty or fallback list 0.700")
    decision = decide_promotion(_metrics(0.5, coverage=0.05), BASELINES, None, GATE, 20)
    assert not decision.promoted
    assert "output gate: catalogue coverage 0.050 is below 0.100" in decision.reason
