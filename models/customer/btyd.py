"""Buy-till-you-die baselines: BG/NBD (Fader, Hardie & Lee 2005) for when and whether, Gamma-Gamma for how much.

Written on scipy rather than taken from a library: ``lifetimes`` is archived and breaks on current
setuptools (``pkg_resources``) and numpy, and ``pymc-marketing`` brings PyMC and PyTensor (a C
compiler at import) into a two-core CI. Both models are the textbook maximum-likelihood fits.

Inputs per customer, in days: ``frequency`` repeat order days, ``recency`` first to last order,
``age`` first order to the as-of day (lifetimes' x, t_x and T); ``monetary`` mean spend per order day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

# A small L2 penalty on the log-parameters: keeps a fit on a short history finite, moves a good one little.
PENALTY = 0.001


class FitError(RuntimeError):
    """The optimiser did not converge: too little history to fit the model."""


def _fit(negative_log_likelihood, start: np.ndarray) -> np.ndarray:
    def objective(log_params: np.ndarray) -> float:
        return negative_log_likelihood(np.exp(log_params)) + PENALTY * float(np.sum(log_params**2))

    found = minimize(objective, np.log(start), method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-6})
    if not np.isfinite(found.fun):
        raise FitError(f"no finite likelihood: {found.message}")
    return np.exp(found.x)


@dataclass(frozen=True)
class BetaGeo:
    """BG/NBD: purchases are Poisson(λ) while alive; after each purchase the customer leaves with probability p."""

    r: float
    alpha: float
    a: float
    b: float

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> BetaGeo:
        x, t_x, age = (frame[c].to_numpy(float) for c in ("frequency", "recency", "age"))

        def negative_log_likelihood(params: np.ndarray) -> float:
            r, alpha, a, b = params
            head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
            stays = -(r + x) * np.log(alpha + age)
            leaves = np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + t_x)
            tail = np.where(x > 0, np.logaddexp(stays, leaves), stays)
            return -float(np.mean(head + tail))

        return cls(*_fit(negative_log_likelihood, np.array([1.0, float(np.mean(age)) + 1.0, 1.0, 1.0])))

    def _odds_gone(self, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
        """Odds that the customer has left, given the history (0 for one-time buyers: no chance to leave yet)."""
        ratio = (self.r + x) * (np.log(self.alpha + age) - np.log(self.alpha + t_x))
        odds = self.a / np.maximum(self.b + x - 1, 1e-12) * np.exp(np.minimum(ratio, 700))
        return np.where(x > 0, odds, 0.0)

    def p_alive(self, frame: pd.DataFrame) -> np.ndarray:
        x, t_x, age = (frame[c].to_numpy(float) for c in ("frequency", "recency", "age"))
        return 1.0 / (1.0 + self._odds_gone(x, t_x, age))

    def p_purchase(self, frame: pd.DataFrame, days: int) -> np.ndarray:
        """P(at least one purchase in the next ``days``): alive, and the first Poisson arrival comes in time
        (a customer only leaves right after a purchase, so an alive one stays until the next)."""
        x, age = frame["frequency"].to_numpy(float), frame["age"].to_numpy(float)
        none_while_alive = np.exp((self.r + x) * (np.log(self.alpha + age) - np.log(self.alpha + age + days)))
        return self.p_alive(frame) * (1.0 - none_while_alive)

    def expected_purchases(self, frame: pd.DataFrame, days: int) -> np.ndarray:
        """E[purchases in the next ``days``] (the paper's equation 10)."""
        x, t_x, age = (frame[c].to_numpy(float) for c in ("frequency", "recency", "age"))
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = days / (alpha + age + days)
        hyper = hyp2f1(r + x, b + x, a + b + x - 1, z)
        shrink = np.exp((r + x) * (np.log(alpha + age) - np.log(alpha + age + days)))
        # a = 1 is the formula's removable singularity: step off it.
        scale = (a + b + x - 1) / (a - 1 if abs(a - 1) > 1e-6 else 1e-6)
        expected = scale * (1.0 - shrink * hyper)
        return np.nan_to_num(expected / (1.0 + self._odds_gone(x, t_x, age)), nan=0.0, posinf=0.0).clip(0)


@dataclass(frozen=True)
class GammaGamma:
    """Gamma-Gamma: each customer's spend per order varies around their own mean, itself gamma distributed."""

    p: float
    q: float
    v: float

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> GammaGamma:
        repeat = frame[(frame["frequency"] > 0) & (frame["monetary"] > 0)]
        x, m = repeat["frequency"].to_numpy(float), repeat["monetary"].to_numpy(float)
        if len(repeat) < 10:
            raise FitError(f"Gamma-Gamma needs repeat customers with spend; found {len(repeat)}")

        def negative_log_likelihood(params: np.ndarray) -> float:
            p, q, v = params
            values = (
                gammaln(p * x + q)
                - gammaln(p * x)
                - gammaln(q)
                + q * np.log(v)
                + (p * x - 1) * np.log(m)
                + p * x * np.log(x)
                - (p * x + q) * np.log(x * m + v)
            )
            return -float(np.mean(values))

        return cls(*_fit(negative_log_likelihood, np.array([1.0, 2.0, float(np.mean(m))])))

    def expected_spend(self, frame: pd.DataFrame) -> np.ndarray:
        """Each customer's expected spend per order: their mean shrunk toward the population's."""
        x, m = frame["frequency"].to_numpy(float), frame["monetary"].to_numpy(float).clip(0)
        q = max(self.q, 1.0 + 1e-6)
        population = self.p * self.v / (q - 1)
        personal = self.p * (self.v + x * m) / (self.p * x + q - 1)
        return np.where(x > 0, personal, population)
