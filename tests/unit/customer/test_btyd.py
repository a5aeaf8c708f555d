"""BG/NBD and Gamma-Gamma recover what was planted, and their predictions mean what they say."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.customer.btyd import BetaGeo, FitError, GammaGamma

PLANTED = {"r": 0.8, "alpha": 20.0, "a": 0.8, "b": 2.5}


def _simulate(n: int, seed: int) -> pd.DataFrame:
    """Customers living BG/NBD's story: Poisson purchases while alive, leaving after a purchase with p."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(PLANTED["r"], 1 / PLANTED["alpha"], n)
    leave = rng.beta(PLANTED["a"], PLANTED["b"], n)
    age = rng.uniform(100, 300, n)
    rows = []
    for i in range(n):
        t, x, t_x = 0.0, 0, 0.0
        while (t := t + rng.exponential(1 / rate[i])) <= age[i]:
            x, t_x = x + 1, t
            if rng.random() < leave[i]:
                break
        rows.append((x, t_x, age[i], rng.gamma(5, 10) if x else 0.0))
    return pd.DataFrame(rows, columns=["frequency", "recency", "age", "monetary"])


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    return _simulate(3000, seed=1)


def test_bg_nbd_recovers_the_planted_parameters(customers):
    fitted = BetaGeo.fit(customers)
    for name, planted in PLANTED.items():
        assert getattr(fitted, name) == pytest.approx(planted, rel=0.25), name
    # The purchase rate of the population, r/alpha, is what the scores scale with: tighter.
    assert fitted.r / fitted.alpha == pytest.approx(PLANTED["r"] / PLANTED["alpha"], rel=0.1)


def test_predictions_rank_and_bound_as_they_should(customers):
    model = BetaGeo.fit(customers)
    probe = pd.DataFrame(
        {"frequency": [0, 5, 5, 5], "recency": [0, 190, 20, 190], "age": [200, 200, 200, 400], "monetary": 0.0}
    )
    alive = model.p_alive(probe)
    assert alive[0] == 1.0  # a one-time buyer has had no purchase to leave after
    assert alive[1] > alive[2]  # the same five purchases, the last one recent: more likely still here
    p30, p90 = model.p_purchase(probe, 30), model.p_purchase(probe, 90)
    assert np.all((p30 >= 0) & (p30 <= p90) & (p90 <= alive))
    expected = model.expected_purchases(probe, 90)
    assert np.all(expected >= 0) and expected[1] > expected[2]


def test_expected_purchases_match_a_simulation_of_the_fitted_model(customers):
    """Equation 10 at x = 0, T = 0 is a new customer's E[X(t)]: the mean count of simulated new customers."""
    model = BetaGeo.fit(customers)
    fresh = pd.DataFrame({"frequency": [0.0], "recency": [0.0], "age": [0.0]})
    rng = np.random.default_rng(7)
    n, t = 20000, 60.0
    rate = rng.gamma(model.r, 1 / model.alpha, n)
    leave = rng.beta(model.a, model.b, n)
    counts = np.zeros(n)
    for i in range(n):
        clock = rng.exponential(1 / rate[i])
        while clock <= t:
            counts[i] += 1
            if rng.random() < leave[i]:
                break
            clock += rng.exponential(1 / rate[i])
    assert model.expected_purchases(fresh, int(t))[0] == pytest.approx(counts.mean(), rel=0.08)


def test_gamma_gamma_shrinks_a_customers_spend_toward_the_population(customers):
    spend = GammaGamma.fit(customers)
    probe = pd.DataFrame({"frequency": [0, 1, 20], "monetary": [0.0, 500.0, 500.0]})
    population, one_order, many_orders = spend.expected_spend(probe)
    assert population < one_order < many_orders < 500
    assert population == pytest.approx(customers.loc[customers["frequency"] > 0, "monetary"].mean(), rel=0.2)


def test_a_history_too_thin_to_fit_is_an_error_not_a_made_up_model():
    with pytest.raises(FitError):
        GammaGamma.fit(pd.DataFrame({"frequency": [0, 1], "monetary": [0.0, 3.0]}))
    with pytest.raises(FitError):
        BetaGeo.fit(pd.DataFrame({"frequency": [], "recency": [], "age": []}))
