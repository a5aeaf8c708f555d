"""Candidate retrieval: matrix factorisation with item side features, trained on implicit feedback.

An item's vector is its own embedding plus embeddings of its category, brand and
price band, each with one extra column that acts as a bias (users carry a constant 1
there). The content part is what lets a SKU that nobody has touched yet be scored
from its catalogue data alone. Training uses BPR (one uniform negative per positive)
or a softmax over in-batch negatives with a logQ correction for popularity; top-N
candidates are exact dot-product top-k in user batches, on the GPU when there is one.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from shopml.config.recommend import RetrievalConfig

log = logging.getLogger(__name__)


class MatrixFactorisation(nn.Module):
    """User and item towers whose dot product scores a pair; item towers share content embeddings."""

    def __init__(self, n_users: int, n_items: int, n_content: tuple[int, int, int], dim: int, use_content: bool):
        super().__init__()
        self.users = nn.Embedding(n_users, dim, sparse=True)
        self.items = nn.Embedding(n_items, dim + 1, sparse=True)
        # Row 0 of each content table stands for "unknown" (null category, unseen brand, no price).
        self.content = nn.ModuleList(nn.Embedding(n + 1, dim + 1) for n in n_content) if use_content else None
        for table in self.parameters():
            nn.init.normal_(table, std=0.05)

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        vectors = self.users(users)
        return torch.cat([vectors, torch.ones_like(vectors[:, :1])], dim=1)

    def item_vectors(self, items: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        """Vectors of items; ``items`` -1 marks an unseen SKU, which gets its content part only."""
        known = items >= 0
        if bool(known.all()):
            vectors = self.items(items)
        else:
            vectors = torch.zeros(len(items), self.items.embedding_dim, device=items.device)
            vectors[known] = self.items(items[known])
        if self.content is not None:
            for column, table in enumerate(self.content):
                vectors = vectors + table(content[:, column])
        return vectors


@dataclass
class TrainedRetrieval:
    """A fitted model with the id maps and vocabularies needed to score any later catalogue."""

    model: MatrixFactorisation
    user_ids: pd.Index
    item_ids: pd.Index
    categories: list[str]
    brands: list[str]
    price_edges: list[float]
    params: dict
    history: list[dict] = field(default_factory=list)

    @property
    def device(self) -> torch.device:
        return self.model.users.weight.device

    def encode_content(self, items: pd.DataFrame) -> torch.Tensor:
        """Category, brand and price-band codes (0 = unknown) of a catalogue frame.

        Absent columns, nulls and non-positive prices (a missing price in order-line exports) are unknown.
        """
        items = _content(items)
        category = pd.Index(self.categories).get_indexer(items["category"].astype(object)) + 1
        brand = pd.Index(self.brands).get_indexer(items["brand"].astype(object)) + 1
        price = items["unit_price"].to_numpy(dtype=float)
        band = np.where(np.isnan(price), 0, np.searchsorted(self.price_edges, np.nan_to_num(price)) + 1)
        codes = np.stack([category, brand, band], axis=1).astype(np.int64)
        return torch.from_numpy(codes).to(self.device)

    @torch.no_grad()
    def item_vectors(self, items: pd.DataFrame) -> torch.Tensor:
        """Vectors for the SKUs of ``items`` (sku, category, brand, unit_price), in row order."""
        codes = torch.from_numpy(self.item_ids.get_indexer(items["sku"]).astype(np.int64)).to(self.device)
        return self.model.item_vectors(codes, self.encode_content(items))

    @torch.no_grad()
    def user_vectors(self, user_ids: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
        """(known mask, vectors of the known users): unknown users are the cold-start ones."""
        codes = self.user_ids.get_indexer(user_ids)
        known = codes >= 0
        return known, self.model.user_vectors(torch.from_numpy(codes[known].astype(np.int64)).to(self.device))


def _content(items: pd.DataFrame) -> pd.DataFrame:
    """sku, category, brand and unit_price of a catalogue frame; missing columns null, prices <= 0 unknown."""
    content = items.reindex(columns=["sku", "category", "brand", "unit_price"])
    price = pd.to_numeric(content["unit_price"], errors="coerce").astype(float)
    return content.assign(unit_price=price.where(price > 0))


def _vocabulary(values: pd.Series) -> list[str]:
    return sorted(values.dropna().astype(str).unique().tolist())


def _price_edges(prices: pd.Series, bands: int) -> list[float]:
    valid = prices.dropna().to_numpy(dtype=float)
    if bands <= 1 or len(valid) == 0:
        return []
    return np.unique(np.quantile(valid, np.linspace(0, 1, bands + 1)[1:-1])).tolist()


def _log_q(item_codes: np.ndarray, n_items: int) -> np.ndarray:
    counts = np.bincount(item_codes, minlength=n_items).astype(np.float64)
    return np.log(np.maximum(counts, 1.0) / counts.sum()).astype(np.float32)


def train_retrieval_model(
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    config: RetrievalConfig,
    seed: int,
    device: str = "cpu",
) -> TrainedRetrieval:
    """Fit user and item vectors on (user_id, sku, strength) rows; ``items`` is the catalogue to sample negatives from.

    Every catalogue SKU gets an id embedding (those never interacted with are only ever
    negatives), so the item index is the catalogue plus any interacted SKU missing from it.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    item_ids = pd.Index(pd.unique(pd.concat([items["sku"], interactions["sku"]], ignore_index=True)))
    catalogue = (
        _content(items).drop_duplicates("sku").set_index("sku").reindex(item_ids).rename_axis("sku").reset_index()
    )
    user_ids = pd.Index(pd.unique(interactions["user_id"]))
    users = user_ids.get_indexer(interactions["user_id"]).astype(np.int64)
    positives = item_ids.get_indexer(interactions["sku"]).astype(np.int64)
    weights = np.log1p(interactions["strength"].to_numpy(dtype=np.float32)) if config.weight_by_strength else None
    # All-zero strengths (e.g. only returned purchases, clamped at 0) would give 0/0: weigh equally instead.
    usable = weights is not None and weights.mean() > 0
    weights = weights / weights.mean() if usable else np.ones(len(users), dtype=np.float32)

    categories, brands = _vocabulary(catalogue["category"]), _vocabulary(catalogue["brand"])
    edges = _price_edges(catalogue["unit_price"], config.price_bands)
    model = MatrixFactorisation(
        len(user_ids),
        len(item_ids),
        (len(categories), len(brands), len(edges) + 1),
        config.embedding_dim,
        config.use_item_content,
    ).to(device)
    trained = TrainedRetrieval(model, user_ids, item_ids, categories, brands, edges, config.model_dump())
    content = trained.encode_content(catalogue)
    # Id tables are large and each step touches few rows: sparse gradients and SparseAdam update only those.
    optimisers = [torch.optim.SparseAdam([model.users.weight, model.items.weight], lr=config.learning_rate)]
    if model.content is not None:
        optimisers.append(torch.optim.Adam(model.content.parameters(), lr=config.learning_rate))
    users_t, pos_t = torch.from_numpy(users).to(device), torch.from_numpy(positives).to(device)
    weights_t = torch.from_numpy(weights).to(device)
    log_q = torch.from_numpy(_log_q(positives, len(item_ids))).to(device)
    log.info(
        "training retrieval (%s loss) on %d interactions, %d users × %d items, dim %d, on %s",
        config.loss,
        len(users),
        len(user_ids),
        len(item_ids),
        config.embedding_dim,
        device,
    )
    model.train()
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        loss_sum = _train_epoch(model, optimisers, users_t, pos_t, weights_t, log_q, content, config, rng)
        seconds = time.perf_counter() - started
        trained.history.append({"epoch": epoch, "loss": loss_sum / max(len(users), 1), "seconds": seconds})
        log.info("retrieval epoch %d/%d loss %.4f (%.1fs)", epoch, config.epochs, loss_sum / len(users), seconds)
    model.eval()
    return trained


def _train_epoch(
    model: MatrixFactorisation,
    optimisers: list[torch.optim.Optimizer],
    users: torch.Tensor,
    positives: torch.Tensor,
    weights: torch.Tensor,
    log_q: torch.Tensor,
    content: torch.Tensor,
    config: RetrievalConfig,
    rng: np.random.Generator,
) -> float:
    """One shuffled pass; returns the summed loss."""
    device, n, n_items = users.device, len(users), model.items.num_embeddings
    order = torch.from_numpy(rng.permutation(n)).to(device)
    negatives = torch.from_numpy(rng.integers(0, n_items, n)).to(device)
    total = 0.0
    for start in range(0, n, config.batch_size):
        batch = order[start : start + config.batch_size]
        u = model.user_vectors(users[batch])
        pos = positives[batch]
        p = model.item_vectors(pos, content[pos])
        if config.loss == "bpr":
            neg = negatives[start : start + len(batch)]
            q = model.item_vectors(neg, content[neg])
            # Past a margin of 20 the gradient is exactly zero instead of denormal (x86 is ~1000x slower on those).
            per_pair = -F.logsigmoid(((u * p).sum(1) - (u * q).sum(1)).clamp(max=20.0))
            penalty = u.pow(2).sum(1) + p.pow(2).sum(1) + q.pow(2).sum(1)
        else:
            logits = (u @ p.T) / config.temperature - log_q[pos][None, :]
            # The same SKU twice in a batch is not a negative of itself.
            same = (pos[:, None] == pos[None, :]) & ~torch.eye(len(batch), dtype=torch.bool, device=device)
            logits = logits.masked_fill(same, -1e9)
            per_pair = F.cross_entropy(logits, torch.arange(len(batch), device=device), reduction="none")
            penalty = u.pow(2).sum(1) + p.pow(2).sum(1)
        loss = (per_pair * weights[batch]).mean() + config.l2 * penalty.mean()
        for optimiser in optimisers:
            optimiser.zero_grad(set_to_none=True)
        loss.backward()
        for optimiser in optimisers:
            optimiser.step()
        total += float(loss.detach()) * len(batch)
    return total


def top_n(
    score_rows: Callable[[int, int], torch.Tensor],
    n_rows: int,
    n: int,
    available: np.ndarray | None = None,
    blocked: tuple[np.ndarray, np.ndarray] | None = None,
    batch_rows: int = 2048,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``n`` columns per row of a score matrix computed in row batches.

    ``score_rows(start, stop)`` returns the dense scores of rows [start, stop) on any
    device; ``available`` masks columns for everyone and ``blocked`` (row, column) pairs
    for single rows (a user's recent purchases), both before the cut, so filtered lists
    stay full. Returns (scores, columns), each n_rows × n; slots that could not be filled
    hold -inf and column -1.
    """
    order = np.argsort(blocked[0], kind="stable") if blocked is not None else None
    rows_sorted = blocked[0][order] if blocked is not None else None
    all_scores, all_columns = [], []
    for start in range(0, n_rows, batch_rows):
        stop = min(start + batch_rows, n_rows)
        with torch.no_grad():
            scores = score_rows(start, stop).float()
            if available is not None:
                scores[:, torch.from_numpy(~available).to(scores.device)] = -torch.inf
            if blocked is not None:
                lo, hi = np.searchsorted(rows_sorted, [start, stop])
                picked = order[lo:hi]
                rows = torch.from_numpy(blocked[0][picked] - start).to(scores.device)
                cols = torch.from_numpy(blocked[1][picked]).to(scores.device)
                scores[rows, cols] = -torch.inf
            k = min(n, scores.shape[1])
            values, columns = torch.topk(scores, k, dim=1)
        values, columns = values.cpu().numpy(), columns.cpu().numpy()
        columns[np.isneginf(values)] = -1
        if k < n:
            values = np.pad(values, ((0, 0), (0, n - k)), constant_values=-np.inf)
            columns = np.pad(columns, ((0, 0), (0, n - k)), constant_values=-1)
        all_scores.append(values)
        all_columns.append(columns)
    if not all_scores:
        return np.empty((0, n), np.float32), np.empty((0, n), np.int64)
    return np.concatenate(all_scores), np.concatenate(all_columns)


def save_retrieval(trained: TrainedRetrieval, folder: Path, name: str) -> None:
    """Weights as ``<name>.pt``, id maps, vocabularies and params as ``<name>.json``."""
    torch.save(trained.model.state_dict(), folder / f"{name}.pt")
    payload = {
        "user_ids": trained.user_ids.tolist(),
        "item_ids": trained.item_ids.tolist(),
        "categories": trained.categories,
        "brands": trained.brands,
        "price_edges": trained.price_edges,
        "params": trained.params,
        "history": trained.history,
    }
    (folder / f"{name}.json").write_text(json.dumps(payload))


def load_retrieval(folder: Path, name: str, device: str = "cpu") -> TrainedRetrieval:
    payload = json.loads((folder / f"{name}.json").read_text())
    params = payload["params"]
    model = MatrixFactorisation(
        len(payload["user_ids"]),
        len(payload["item_ids"]),
        (len(payload["categories"]), len(payload["brands"]), len(payload["price_edges"]) + 1),
        params["embedding_dim"],
        params["use_item_content"],
    )
    model.load_state_dict(torch.load(folder / f"{name}.pt", map_location=device, weights_only=True))
    model.to(device).eval()
    return TrainedRetrieval(
        model,
        pd.Index(payload["user_ids"]),
        pd.Index(payload["item_ids"]),
        payload["categories"],
        payload["brands"],
        payload["price_edges"],
        params,
        payload["history"],
    )
