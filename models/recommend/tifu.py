"""TIFU-KNN (Hu et al., "Modeling Personalized Item Frequency Information for Next-basket
Recommendation", SIGIR 2020): a repeat-aware baseline, and a ranker feature next to it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from shopml.config.recommend import TifuConfig

if TYPE_CHECKING:
    import pandas as pd

# Users x users similarities are dense: this many users at a time bound the memory.
SIMILARITY_BATCH_USERS = 256


def tifu_user_vectors(baskets: pd.DataFrame, users: pd.Index, items: pd.Index, config: TifuConfig):
    """TIFU user vectors: time-decayed averages of the user's baskets, as a ``users`` × ``items`` CSR.

    ``baskets`` holds one row per (user_id, sku, day) bought; users and items outside the indexes are left out.

    Baskets (purchase days) are split into groups of ``group_size`` from the latest; a basket
    weighs ``basket_decay`` ** (its position from its group's latest) within its group, and a
    group ``group_decay`` ** (its position from the latest group).
    """
    import pandas as pd
    from scipy import sparse

    coded = pd.DataFrame(
        {
            "user": users.get_indexer(baskets["user_id"]),
            "item": items.get_indexer(baskets["sku"]),
            "day": baskets["day"].to_numpy(),
        }
    )
    coded = coded[(coded["user"] >= 0) & (coded["item"] >= 0)]
    days = coded[["user", "day"]].drop_duplicates().sort_values(["user", "day"], ascending=[True, False])
    days["position"] = days.groupby("user").cumcount()
    days["group"] = days["position"] // config.group_size
    days["in_group"] = days["position"] % config.group_size
    days["group_size"] = days.groupby(["user", "group"])["day"].transform("size")
    days["groups"] = days.groupby("user")["group"].transform("max") + 1
    days["weight"] = (
        config.basket_decay ** days["in_group"]
        / days["group_size"]
        * config.group_decay ** days["group"]
        / days["groups"]
    )
    weighted = coded.merge(days[["user", "day", "weight"]], on=["user", "day"])
    return sparse.csr_matrix(
        (weighted["weight"].to_numpy(float), (weighted["user"].to_numpy(), weighted["item"].to_numpy())),
        shape=(len(users), len(items)),
    )


class TifuKnn:
    """``alpha`` × the user's TIFU vector + (1 - alpha) × the mean vector of their nearest neighbours (cosine)."""

    def __init__(self, vectors, config: TifuConfig) -> None:
        """``vectors``: the users' TIFU vectors (``tifu_user_vectors``)."""
        from scipy import sparse

        self.vectors = vectors
        norms = np.sqrt(np.asarray(self.vectors.multiply(self.vectors).sum(axis=1))).ravel()
        inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        self.unit = sparse.diags(inverse) @ self.vectors
        self.unit_t = self.unit.T.tocsr()
        self.alpha = config.alpha
        self.n_neighbours = min(config.neighbours, max(vectors.shape[0] - 1, 1))

    def _neighbour_means(self, codes: np.ndarray) -> np.ndarray:
        from scipy import sparse

        similarity = (self.unit[codes] @ self.unit_t).toarray()
        similarity[np.arange(len(codes)), codes] = -np.inf  # not one's own neighbour
        nearest = np.argpartition(-similarity, self.n_neighbours - 1, axis=1)[:, : self.n_neighbours]
        weights = sparse.csr_matrix(
            (
                np.full(nearest.size, 1.0 / self.n_neighbours),
                (np.repeat(np.arange(len(codes)), self.n_neighbours), nearest.ravel()),
            ),
            shape=(len(codes), self.vectors.shape[0]),
        )
        return (weights @ self.vectors).toarray()

    def parts(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(own vectors, neighbours' mean vectors), dense (len(codes) × items), of users by code (all >= 0)."""
        step = SIMILARITY_BATCH_USERS
        own = self.vectors[codes].toarray()
        neighbours = [self._neighbour_means(codes[i : i + step]) for i in range(0, len(codes), step)]
        return own, np.vstack(neighbours) if neighbours else own

    def blend(self, own: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
        """TIFU-KNN's score from its two parts."""
        return self.alpha * own + (1 - self.alpha) * neighbours

    def scores(self, codes: np.ndarray) -> np.ndarray:
        """Dense scores (len(codes) × items) of users given by their codes (all >= 0)."""
        return self.blend(*self.parts(codes))
