"""List-quality metrics shared by the model and every baseline, so they are compared like for like.

Relevance is binary (the user bought the SKU in the evaluation window). Ranking metrics
average over every user with a purchase in the window: a user without a list scores 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Catalogue attributes a list's diversity can be measured by, in order of preference.
DIVERSITY_ATTRIBUTES = ("category", "brand")


def ranking_metrics(recs: pd.DataFrame, truth: pd.DataFrame, ks: tuple[int, ...]) -> dict[str, float]:
    """precision, recall, ndcg, map and hit_rate at each k, keyed like ``ndcg@10``.

    ``recs``: user_id, sku, rank (1-based); ``truth``: user_id, sku bought.
    MAP@k divides by min(|relevant|, k), so a perfect list scores 1.
    """
    truth = truth[["user_id", "sku"]].drop_duplicates()
    n_relevant = truth.groupby("user_id").size()
    if n_relevant.empty:
        return {f"{m}@{k}": 0.0 for k in ks for m in ("precision", "recall", "ndcg", "map", "hit_rate")}
    ranked = recs[recs["user_id"].isin(n_relevant.index)][["user_id", "sku", "rank"]]
    ranked = ranked.merge(truth.assign(hit=1.0), on=["user_id", "sku"], how="left").fillna({"hit": 0.0})
    ranked = ranked.sort_values(["user_id", "rank"], ignore_index=True)
    ranked["hits_so_far"] = ranked.groupby("user_id")["hit"].cumsum()
    ranked["gain"] = ranked["hit"] / np.log2(ranked["rank"] + 1.0)
    ranked["precision_at_hit"] = ranked["hit"] * ranked["hits_so_far"] / ranked["rank"]
    ideal = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, max(ks) + 2)))])
    result: dict[str, float] = {}
    for k in ks:
        top = ranked[ranked["rank"] <= k].groupby("user_id")[["hit", "gain", "precision_at_hit"]].sum()
        top = top.reindex(n_relevant.index, fill_value=0.0)
        cap = np.minimum(n_relevant.to_numpy(), k)
        result[f"precision@{k}"] = float((top["hit"] / k).mean())
        result[f"recall@{k}"] = float((top["hit"] / n_relevant).mean())
        result[f"ndcg@{k}"] = float((top["gain"].to_numpy() / ideal[cap]).mean())
        result[f"map@{k}"] = float((top["precision_at_hit"].to_numpy() / cap).mean())
        result[f"hit_rate@{k}"] = float((top["hit"] > 0).mean())
    return result


def reranked(recs: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """The rows of ranked lists where ``keep`` holds, ranked 1.. again within each user."""
    kept = recs[keep].sort_values(["user_id", "rank"], kind="stable")
    return kept.assign(rank=kept.groupby("user_id").cumcount().to_numpy() + 1)


def segment_metrics(recs: pd.DataFrame, truth: pd.DataFrame, ks: tuple[int, ...], segment: str) -> dict[str, float]:
    """``ranking_metrics`` keyed ``<segment>:<metric>@k``: repeat items against repeat purchases, say."""
    return {f"{segment}:{key}": value for key, value in ranking_metrics(recs, truth, ks).items()}


def catalogue_coverage(recs: pd.DataFrame, catalogue_size: int, k: int) -> float:
    """Share of the catalogue that appears in at least one top-k list."""
    return float(recs.loc[recs["rank"] <= k, "sku"].nunique() / catalogue_size) if catalogue_size else 0.0


def fallback_share(recs: pd.DataFrame, user_ids) -> float:
    """Share of ``user_ids`` whose list is empty or a fallback list."""
    users = pd.Index(pd.unique(np.asarray(user_ids)))
    if users.empty:
        return 0.0
    personal = recs.loc[~recs["is_fallback"].astype(bool), "user_id"].unique()
    return float(1.0 - users.isin(personal).mean())


def intra_list_diversity(recs: pd.DataFrame, item_category: pd.Series, k: int) -> float:
    """Mean share of item pairs in a top-k list that are from different categories (lists of 2+ items).

    ``item_category`` maps sku to category; unknown categories count as one category.
    """
    top = recs.loc[recs["rank"] <= k, ["user_id", "sku"]]
    top = top.assign(category=top["sku"].map(item_category).fillna("__unknown__"))
    sizes = top.groupby("user_id").size()
    same = top.groupby(["user_id", "category"]).size()
    same_pairs = (same * (same - 1)).groupby(level="user_id").sum()
    sizes = sizes[sizes >= 2]
    if sizes.empty:
        return 0.0
    return float((1.0 - same_pairs.reindex(sizes.index) / (sizes * (sizes - 1))).mean())


@dataclass(frozen=True)
class DiversityBasis:
    """What intra-list diversity is measured by on one catalogue, and why.

    ``attribute`` is a catalogue column (category, else brand) or None when the catalogue has
    no attribute a list could be diverse in; ``reason`` says which, for the gate's result.
    """

    attribute: str | None
    reason: str

    @property
    def measured(self) -> bool:
        return self.attribute is not None

    def groups(self, items: pd.DataFrame) -> pd.Series | None:
        """sku -> attribute value, what ``intra_list_diversity`` takes; None when diversity is not measured."""
        return items.set_index("sku")[self.attribute] if self.attribute is not None else None


def choose_diversity_basis(items: pd.DataFrame, min_labelled_share: float) -> DiversityBasis:
    """Measure diversity by category, else by brand, else not at all.

    An attribute qualifies when the catalogue has at least two distinct values of it on at
    least ``min_labelled_share`` of its SKUs. Order-line exports often have no categories:
    every list would then score 0 and fail a floor that no list could ever pass.
    """
    missing = []
    for attribute in DIVERSITY_ATTRIBUTES:
        values = items[attribute] if attribute in items else pd.Series(None, index=items.index, dtype=object)
        labelled = values.notna().to_numpy()
        distinct = values[labelled].astype(str).nunique()
        share = float(labelled.mean()) if len(items) else 0.0
        if distinct >= 2 and share >= min_labelled_share:
            because = f"{'; '.join(missing)}: " if missing else ""
            return DiversityBasis(
                attribute, f"{because}diversity measured by {attribute} ({distinct} values on {share:.0%} of SKUs)"
            )
        if distinct == 0:
            missing.append(f"catalogue has no {_plural(attribute)}")
        elif distinct == 1:
            missing.append(f"catalogue has one {attribute}")
        else:
            missing.append(f"only {share:.0%} of the catalogue has a {attribute} (needs {min_labelled_share:.0%})")
    return DiversityBasis(None, f"diversity not checked: {'; '.join(missing)}")


def _plural(attribute: str) -> str:
    return {"category": "categories"}.get(attribute, f"{attribute}s")


def evaluate_lists(
    recs: pd.DataFrame,
    truth: pd.DataFrame,
    item_group: pd.Series | None,
    catalogue_size: int,
    ks: tuple[int, ...],
) -> dict[str, float]:
    """Every metric of one candidate's lists: ranking metrics, coverage, diversity and fallback share.

    ``item_group`` maps sku to what diversity is measured by (``DiversityBasis.groups``);
    None leaves diversity out, for a catalogue that has nothing to measure it by.
    """
    top_k = max(ks)
    metrics = {
        **ranking_metrics(recs, truth, ks),
        f"coverage@{top_k}": catalogue_coverage(recs, catalogue_size, top_k),
        "fallback_share": fallback_share(recs, truth["user_id"]),
    }
    if item_group is not None:
        metrics[f"diversity@{top_k}"] = intra_list_diversity(recs, item_group, top_k)
    return metrics
