"""Promotion gate and output floors."""

from __future__ import annotations

import pandas as pd

from models.recommend.gate import check_output, decide_promotion
from models.recommend.metrics import DiversityBasis, choose_diversity_basis
from shopml.config.recommend import GateConfig

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


def test_diversity_floor_is_skipped_with_a_reason_when_the_catalogue_has_nothing_to_measure_it_by():
    skipped = DiversityBasis(None, "diversity not checked: catalogue has no categories; catalogue has no brands")
    metrics = {key: value for key, value in _metrics(0.35).items() if key != "diversity@20"}
    assert check_output(metrics, GATE, 20, skipped) == []
    decision = decide_promotion(metrics, BASELINES, None, GATE, 20, skipped)
    assert decision.promoted
    assert decision.reason.endswith("; diversity not checked: catalogue has no categories; catalogue has no brands")
    assert decision.as_dict()["diversity"] == skipped.reason
    refused = decide_promotion({**metrics, "coverage@20": 0.01}, BASELINES, None, GATE, 20, skipped)
    assert not refused.promoted and "diversity not checked" in refused.reason


def test_diversity_by_brand_is_gated_and_named():
    by_brand = DiversityBasis(
        "brand", "catalogue has no categories: diversity measured by brand (9 values on 100% of SKUs)"
    )
    assert check_output(_metrics(0.35, diversity=0.1), GATE, 20, by_brand) == [
        "list diversity (by brand) 0.100 is below 0.200"
    ]
    decision = decide_promotion(_metrics(0.35), BASELINES, None, GATE, 20, by_brand)
    assert decision.promoted and decision.reason.endswith(by_brand.reason)


def _catalogue(category, brand) -> pd.DataFrame:
    return pd.DataFrame({"sku": [f"s{i}" for i in range(len(category))], "category": category, "brand": brand})


def test_diversity_basis_follows_the_catalogue():
    chosen = choose_diversity_basis(_catalogue(["a", "b", "a", None], ["x", "y", None, None]), 0.5)
    assert chosen == DiversityBasis("category", "diversity measured by category (2 values on 75% of SKUs)")
    assert chosen.groups(_catalogue(["a", "b", "a", None], [None] * 4)).to_dict() == {
        "s0": "a",
        "s1": "b",
        "s2": "a",
        "s3": None,
    }
    brand = choose_diversity_basis(_catalogue([None] * 4, ["x", "y", "x", "z"]), 0.5)
    assert brand.attribute == "brand"
    assert brand.reason.startswith("catalogue has no categories: diversity measured by brand (3 values")
    one = choose_diversity_basis(_catalogue(["a"] * 5, ["x", "y", None, None, None]), 0.5)
    assert one == DiversityBasis(
        None,
        "diversity not checked: catalogue has one category; only 40% of the catalogue has a brand (needs 50%)",
    )
    assert choose_diversity_basis(_catalogue(["a"] * 2, ["x", "x"]), 0.5).reason.endswith("catalogue has one brand")
    none = choose_diversity_basis(pd.DataFrame({"sku": ["s0", "s1"]}), 0.5)
    assert none == DiversityBasis(None, "diversity not checked: catalogue has no categories; catalogue has no brands")
    assert none.groups(pd.DataFrame({"sku": ["s0"]})) is None
