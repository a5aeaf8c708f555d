"""Deterministic sample landing data with planted structure and planted mess.

``make run``, the test suite and the benchmarks need raw data that behaves
like a real shop's exports: models must have something real to learn, and the
cleaning stages must have real mess to remove. This module simulates a shop
day by day and writes the landing zone the pipeline reads::

    <out>/events/date=YYYY-MM-DD/part-NNNNN.jsonl[.gz] | part-NNNNN.csv
    <out>/products/date=YYYY-MM-DD/part-00000.jsonl
    <out>/inventory/date=YYYY-MM-DD/part-00000.jsonl
    <out>/_manifest.json

Planted structure: users belong to latent taste groups with category
preferences and personal favourite SKUs; item popularity is Zipf-like within
categories; sessions run view -> add_to_cart -> purchase (orders share an
order_id); demand has weekly seasonality (weekends ~+40%), a slow trend,
promotions (20-30% off, ~1.8x demand) and stockouts from a simulated (s, Q)
replenishment policy; a few % of purchased lines come back as returns 1-14
days later. Optionally (``reorder_share``, off by default) some customers
re-order like B2B buyers of consumables: each keeps a few staple SKUs from the
consumable categories (the last quarter: grocery, pets, office by default) and
orders each again on its own cycle, with jittered timing and quantities, while
browsing like everyone else.

Planted mess, every line counted in ``_manifest.json`` so pipeline tests can
reconcile exactly: bot sessions (>200 rapid views), late events (1-3 days,
a few >7 days), exact duplicate lines, replays of earlier days' event ids,
non-product order lines (POST, DISCOUNT, ...), anonymous orders, zero prices
and malformed lines of six kinds. Noise lines are added on top of the
simulated behaviour and never move stock.

Everything is vectorised (numpy for the simulation, pyarrow string kernels
for serialisation) and written in bounded chunks, so a 2M-event day takes
seconds. Randomness comes from independent streams keyed by (seed, purpose,
day), so output is byte-identical for a given config.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import math
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import IntEnum
from functools import cache
from pathlib import Path
from typing import IO, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, model_validator

log = logging.getLogger(__name__)

MANIFEST_NAME = "_manifest.json"
GENERATOR_VERSION = 1

EVENT_TYPES = ("view", "add_to_cart", "remove_from_cart", "purchase", "return")
UNKNOWN_EVENT_TYPES = ("wishlist", "share", "compare")
NON_PRODUCT_SKUS = ("POST", "DISCOUNT", "BANK CHARGES", "MANUAL")
MALFORMED_KINDS = (
    "truncated",  # bad JSON: line cut short (CSV: row cut short, fewer fields than the header)
    "missing_field",  # a required field absent (CSV: empty)
    "wrong_type",  # quantity "two", unit_price "abc" or event_ts "yesterday"
    "negative_price",
    "unknown_sku",  # SKU-formatted, but not in the catalogue
    "unknown_event_type",  # wishlist, share or compare
)
EVENT_FIELDS = (
    "event_id",
    "event_type",
    "user_id",
    "session_id",
    "sku",
    "quantity",
    "unit_price",
    "currency",
    "event_ts",
    "order_id",
    "channel",
    "user_agent",
)
REQUIRED_EVENT_FIELDS = ("event_id", "event_type", "session_id", "sku", "event_ts")
WRONG_TYPE_VALUES = {"quantity": "two", "unit_price": "abc", "event_ts": "yesterday"}
CURRENCY = "EUR"

CATEGORY_NAMES = (
    "electronics",
    "home",
    "kitchen",
    "garden",
    "toys",
    "books",
    "fashion",
    "beauty",
    "sports",
    "grocery",
    "pets",
    "office",
)
_NOUNS = ("Lamp", "Kettle", "Speaker", "Backpack", "Mug", "Jacket", "Notebook", "Cable", "Planter", "Brush", "Ball")
_ADJECTIVES = ("Compact", "Classic", "Pro", "Eco", "Deluxe", "Mini", "Smart", "Vintage", "Ultra", "Soft")
_BRANDS = (
    "Nordvik",
    "Acme",
    "Lumio",
    "Ferro",
    "Kasa",
    "Brio",
    "Oakline",
    "Veltra",
    "Pomo",
    "Zephyr",
    "Mavi",
    "Tessa",
    "Quill",
    "Rondo",
    "Solace",
    "Hestia",
)
_WEB_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
)
_APP_AGENTS = ("ShopApp/5.2.1 (iOS 17.5; iPhone15,2)", "ShopApp/5.2.0 (Android 14; SM-S911B)")
_BOT_AGENTS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "PriceCompareCrawler/3.1 (+https://example.com/crawler)",
)
# Scrapers that do not announce themselves: only their volume gives them away.
_STEALTH_BOT_AGENTS = ("python-requests/2.32.3", _WEB_AGENTS[0])
_AGENTS = _WEB_AGENTS + _APP_AGENTS + _BOT_AGENTS + _STEALTH_BOT_AGENTS
_APP_AGENT_START = len(_WEB_AGENTS)
_BOT_AGENT_START = _APP_AGENT_START + len(_APP_AGENTS)
_STEALTH_AGENT_START = _BOT_AGENT_START + len(_BOT_AGENTS)
_CHANNELS = ("web", "app")
# Customers live in a few time zones (mostly central Europe: the shop sells in EUR).
_OFFSETS = (("+01:00", 60), ("+02:00", 120), ("+00:00", 0), ("Z", 0), ("-05:00", -300), ("+05:30", 330))
_OFFSET_WEIGHTS = (0.5, 0.15, 0.1, 0.05, 0.12, 0.08)
_UTC_OFFSET = 2
# Sessions by UTC hour: quiet nights, lunch bump, evening peak.
_HOUR_WEIGHTS = (2, 1, 1, 1, 1, 2, 3, 5, 6, 6, 6, 7, 8, 7, 6, 6, 7, 8, 10, 11, 11, 9, 6, 3)
# Monday..Sunday; weekends about 40% above weekdays.
_WEEKDAY_FACTORS = (1.0, 0.95, 0.97, 1.0, 1.05, 1.4, 1.38)

DAY_MS = 86_400_000
_SEQ_LIMIT = 10**8
_CHUNK_ROWS = 100_000  # rows rendered at a time: bounds memory and keeps allocations reused
_MAX_LATE_DAYS = 3
_VERY_LATE_DAYS = (8, 12)
_RETURN_DAYS = (1, 14)
_UNKNOWN_SKU_POOL = 50

# Behaviour of the simulated shoppers.
_VIEWS_EXTRA_MEAN = 4.0  # views per session = 1 + Poisson(4)
_P_FAVOURITE = 0.35  # share of a known user's views that go to their personal favourites
_P_SESSION_CATEGORY = 0.6  # of the rest, share in the session's main category
_P_CART = 0.12
_P_BUY = 0.55
_P_REMOVE = 0.35
_PROMO_VIEW_BOOST = 1.35
_PROMO_CART_BOOST = 1.6  # measured with the view boost: ~1.8x units while on promotion
_EXTRA_QTY_MEAN = 0.3
_FAVOURITES = 8
_CORE_CATEGORIES = 3
_CORE_MASS = 0.85  # share of a taste group's interest in its core categories
_ZIPF_EXPONENT = 1.1
_GLOBAL_TREND = 0.002  # per day
_SKU_TREND_SD = 0.004  # per-SKU log-popularity drift per day
_DAY_NOISE_SD = 0.04
_PRICE_CHANGE_RATE = 1 / 45
_DEACTIVATION_RATE = 0.0015
_PROMO_DAYS = (3, 7)
_PROMO_DISCOUNT = (0.2, 0.3)
_NULL_CATEGORY_RATE = 0.03
_NULL_BRAND_RATE = 0.05
# Re-ordering customers (reorder_share > 0).
_STAPLES = (2, 5)  # staple SKUs per re-ordering customer
_STAPLE_QTY_EXTRA_MEAN = 4.0  # a staple's usual quantity = 1 + Poisson(4)
_PACE_SD = 0.25  # log-normal spread of how fast a customer uses up a staple
_CYCLE_JITTER = 0.1  # relative noise of each gap between orders
_QTY_JITTER = 0.25  # log-normal noise of each order's quantity
_REORDER_HOURS = (7, 18)  # re-orders are placed in office hours (UTC)


class GeneratorConfig(BaseModel):
    """Knobs of the sample shop; the defaults are what ``make run`` lands."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    users: int = Field(2000, ge=1, le=9_999_999, description="Registered customers.")
    skus: int = Field(300, ge=1, le=999_000, description="Catalogue size.")
    days: int = Field(30, ge=1, description="Landing days to write.")
    events_per_day: int = Field(
        20_000, ge=1, le=50_000_000, description="Average simulated events per day (before noise lines)."
    )
    start_date: date = Field(
        date(2026, 1, 1), description="First landing date; fixed so output never depends on today."
    )
    seed: int = Field(42, ge=0, description="Seed of every random stream.")
    categories: int = Field(12, ge=1, le=500, description="Product categories.")
    taste_groups: int = Field(8, ge=1, description="Latent user taste groups.")
    malformed_rate: float = Field(0.01, ge=0, le=0.5, description="Malformed lines per valid on-time line.")
    duplicate_rate: float = Field(0.005, ge=0, le=0.5, description="Share of valid lines written twice in a file.")
    replay_rate: float = Field(0.002, ge=0, le=0.5, description="Share of a day's events re-sent 1-3 days later.")
    late_rate: float = Field(0.03, ge=0, le=0.5, description="Share of events landing 1-3 days after they happened.")
    very_late_rate: float = Field(0.0005, ge=0, le=0.1, description="Share of events landing 8-12 days late.")
    bot_sessions_per_day: int = Field(3, ge=0, description="Bot sessions per day, each with >200 rapid views.")
    anonymous_rate: float = Field(0.1, ge=0, le=1, description="Share of sessions without a user_id.")
    return_rate: float = Field(0.04, ge=0, le=1, description="Share of purchased lines returned 1-14 days later.")
    non_product_rate: float = Field(0.03, ge=0, le=1, description="Share of orders with a POST/DISCOUNT/... line.")
    zero_price_rate: float = Field(0.01, ge=0, le=1, description="Share of orders with a free (0.00) line.")
    promo_start_rate: float = Field(0.015, ge=0, le=1, description="Chance per SKU and day that a promotion starts.")
    orders_only: bool = Field(False, description="Only purchase and return events, and no inventory feed.")
    with_inventory: bool = Field(True, description="Write the inventory feed (never with orders_only).")
    events_format: Literal["jsonl", "csv"] = Field("jsonl", description="File format of the events feed.")
    rows_per_file: int = Field(1_000_000, ge=1000, description="Most lines per events part file.")
    gzip_every: int = Field(3, ge=0, description="Every n-th events part is .jsonl.gz (0: never; JSONL only).")
    reorder_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of customers who re-order staples of the consumable categories on cycles (B2B-like). "
        "0 by default: the shop make run lands, and the figures measured on it, stay as they are.",
    )
    reorder_cycle_days: tuple[int, int] = Field(
        (7, 28), description="Least and most days between two orders of a staple (each SKU lasts its own)."
    )

    @model_validator(mode="after")
    def _every_category_stocked(self) -> GeneratorConfig:
        if self.skus < self.categories:
            raise ValueError(f"skus ({self.skus}) must be at least categories ({self.categories})")
        return self

    @model_validator(mode="after")
    def _cycles_are_a_range(self) -> GeneratorConfig:
        low, high = self.reorder_cycle_days
        if not 1 <= low <= high:
            raise ValueError(f"reorder_cycle_days ({low}, {high}) must be a range of whole days from 1")
        return self

    @property
    def consumable_categories(self) -> np.ndarray:
        """Category codes whose SKUs are staples: the last quarter (grocery, pets, office of the twelve)."""
        return np.arange(self.categories - max(1, self.categories // 4), self.categories)

    @property
    def writes_inventory(self) -> bool:
        return self.with_inventory and not self.orders_only

    @property
    def end_date(self) -> date:
        return self.start_date + timedelta(days=self.days - 1)


class _Stream(IntEnum):
    """Independent random streams, so one purpose's draws never shift another's."""

    WORLD = 0
    PRICE = 1
    ACTIVE = 2
    PROMO = 3
    VOLUME = 4
    SESSIONS = 5
    RETURNS = 6
    LATE = 7
    REPLAY = 8
    BOTS = 9
    ORDER_NOISE = 10
    MALFORMED = 11
    DUPLICATE = 12
    ARRIVAL = 13
    STREAM = 14
    STAPLES = 15
    REORDER = 16


class _Kind(IntEnum):
    """What a written line is; every line has exactly one kind."""

    VALID = 0
    BOT = 1
    DUPLICATE = 2
    REPLAY = 3
    NON_PRODUCT = 4
    ZERO_PRICE = 5
    TRUNCATED = 6
    MISSING_FIELD = 7
    WRONG_TYPE = 8
    NEGATIVE_PRICE = 9
    UNKNOWN_SKU = 10
    UNKNOWN_EVENT_TYPE = 11


_MALFORMED_START = _Kind.TRUNCATED
_VIEW, _CART, _REMOVE, _PURCHASE, _RETURN = range(5)


def _rng(seed: int, stream: _Stream, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, int(stream), *keys])


def _draw(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Categorical draw from one cumulative distribution (last entry 1.0)."""
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)


@dataclass(frozen=True)
class _Grouped:
    """Many categorical distributions in one flat array: group g's cdf is offset by g.

    One ``searchsorted`` then draws from a different distribution per row.
    """

    flat: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    members: np.ndarray

    @classmethod
    def build(cls, group_of: np.ndarray, weights: np.ndarray, n_groups: int) -> _Grouped:
        order = np.argsort(group_of, kind="stable")
        groups = group_of[order]
        w = weights[order].astype(np.float64)
        sizes = np.bincount(groups, minlength=n_groups)
        ends = np.cumsum(sizes)
        starts = ends - sizes
        totals = np.add.reduceat(w, starts) if len(w) else np.zeros(0)
        totals = np.where(sizes > 0, totals, 0.0)
        flat = np.empty(len(w))
        for g in np.flatnonzero(sizes):
            seg = w[starts[g] : ends[g]]
            cdf = np.cumsum(seg) / totals[g] if totals[g] > 0 else np.arange(1, len(seg) + 1) / len(seg)
            cdf[-1] = 1.0
            flat[starts[g] : ends[g]] = g + cdf
        return cls(flat=flat, starts=starts, ends=ends, members=order)

    def draw(self, group: np.ndarray, u: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.flat, group + u, side="right")
        return self.members[np.clip(pos, self.starts[group], self.ends[group] - 1)]


@dataclass(frozen=True)
class _Staples:
    """Re-ordering customers' staples and every order of them planned over the whole run.

    Per staple: user, sku, cycle (days between orders) and its usual quantity. Per order,
    sorted by (day, user, sku): the day, the staple and the quantity.
    """

    user: np.ndarray
    sku: np.ndarray
    cycle: np.ndarray
    quantity: np.ndarray
    order_day: np.ndarray
    order_staple: np.ndarray
    order_qty: np.ndarray

    def daily_units(self, n_skus: int) -> np.ndarray:
        """Units per day each SKU's staples take on average: the planner knows its regular customers."""
        return np.bincount(self.sku, self.quantity / self.cycle, minlength=n_skus)


@dataclass(frozen=True)
class _World:
    """The shop's static facts: catalogue, customers, tastes, supply parameters."""

    config: GeneratorConfig
    category_names: tuple[str, ...]
    sku_category: np.ndarray
    published_category: np.ndarray  # -1: null in the catalogue
    sku_brand: np.ndarray  # -1: null
    popularity: np.ndarray
    sku_trend: np.ndarray
    base_cents: np.ndarray
    lead_time: np.ndarray
    reorder_point: np.ndarray
    order_qty: np.ndarray
    initial_on_hand: np.ndarray
    group_core: np.ndarray
    group_pref: _Grouped
    group_cdf: np.ndarray
    user_group: np.ndarray
    user_cdf: np.ndarray
    user_app_p: np.ndarray
    user_offset: np.ndarray
    user_web_agent: np.ndarray
    user_app_agent: np.ndarray
    favourites: np.ndarray
    staples: _Staples
    texts: _Texts

    @property
    def n_skus(self) -> int:
        return len(self.sku_category)


@dataclass(frozen=True)
class _Texts:
    """Lookup tables of rendered values (JSON literals and CSV cells) indexed by code."""

    user_json: pa.Array  # last entry: null
    user_csv: pa.Array
    sku_json: pa.Array  # catalogue, then non-product codes, then unknown SKUs
    sku_csv: pa.Array
    type_json: pa.Array
    type_csv: pa.Array
    agent_json: pa.Array
    agent_csv: pa.Array
    channel_json: pa.Array
    channel_csv: pa.Array
    offset: pa.Array
    title_json: pa.Array
    category_json: pa.Array  # last entry: null
    brand_json: pa.Array  # last entry: null
    hms: pa.Array = field(default_factory=lambda: _number_texts("hms"))  # 00:00:00 .. 23:59:59
    millis: pa.Array = field(default_factory=lambda: _number_texts("millis"))  # .000 .. .999
    digits4: pa.Array = field(default_factory=lambda: _number_texts("digits4"))  # 0000 .. 9999
    cents2: pa.Array = field(default_factory=lambda: _number_texts("cents2"))  # 00 .. 99


@cache
def _number_texts(name: str) -> pa.Array:
    """Zero-padded number texts: taking from these is far cheaper than formatting per row."""
    formats = {
        "hms": [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400)],
        "millis": [f".{m:03d}" for m in range(1000)],
        "digits4": [f"{m:04d}" for m in range(10_000)],
        "cents2": [f"{m:02d}" for m in range(100)],
    }
    return pa.array(formats[name])


def _build_texts(config: GeneratorConfig, titles: Sequence[str], categories: Sequence[str]) -> _Texts:
    user_width = max(6, len(str(config.users)))
    sku_width = max(6, len(str(config.skus + 100_000)))
    users = [f"U-{i + 1:0{user_width}d}" for i in range(config.users)]
    unknown = [f"SKU-{config.skus + 100_001 + i:0{sku_width}d}" for i in range(_UNKNOWN_SKU_POOL)]
    skus = [f"SKU-{i + 1:0{sku_width}d}" for i in range(config.skus)] + list(NON_PRODUCT_SKUS) + unknown
    types = list(EVENT_TYPES) + list(UNKNOWN_EVENT_TYPES)

    def as_json(values: Sequence[str], with_null: bool = False) -> pa.Array:
        return pa.array([json.dumps(v) for v in values] + (["null"] if with_null else []))

    return _Texts(
        user_json=as_json(users, with_null=True),
        user_csv=pa.array([*users, ""]),
        sku_json=as_json(skus),
        sku_csv=pa.array(skus),
        type_json=as_json(types),
        type_csv=pa.array(types),
        agent_json=as_json(_AGENTS),
        agent_csv=pa.array(['"' + a + '"' for a in _AGENTS]),
        channel_json=as_json(_CHANNELS),
        channel_csv=pa.array(_CHANNELS),
        offset=pa.array([text for text, _ in _OFFSETS]),
        title_json=as_json(titles),
        category_json=as_json(categories, with_null=True),
        brand_json=as_json(_BRANDS, with_null=True),
    )


def _round_price(cents: np.ndarray) -> np.ndarray:
    """Shop prices end in .99 (or .49 below ten euros)."""
    euros = np.maximum(np.round(cents / 100.0), 1)
    return np.where(euros < 10, euros * 100 - 51, euros * 100 - 1).astype(np.int64)


def _build_world(config: GeneratorConfig) -> _World:
    rng = _rng(config.seed, _Stream.WORLD)
    n_skus, n_users, n_cat, n_groups = config.skus, config.users, config.categories, config.taste_groups
    names = tuple(CATEGORY_NAMES[i] if i < len(CATEGORY_NAMES) else f"category_{i + 1}" for i in range(n_cat))

    # Catalogue: uneven category sizes, Zipf popularity within each category.
    cat_share = rng.dirichlet(np.full(n_cat, 4.0))
    sku_category = np.concatenate(
        [np.arange(min(n_cat, n_skus)), _draw(np.cumsum(cat_share), rng.random(max(0, n_skus - n_cat)))]
    )
    sku_category = rng.permutation(sku_category).astype(np.int32)
    popularity = np.empty(n_skus)
    for c in range(n_cat):
        members = np.flatnonzero(sku_category == c)
        popularity[members] = 1.0 / (rng.permutation(len(members)) + 1.0) ** _ZIPF_EXPONENT
    published = np.where(rng.random(n_skus) < _NULL_CATEGORY_RATE, -1, sku_category).astype(np.int32)
    brand = rng.integers(0, len(_BRANDS), n_skus)
    titles = tuple(
        f"{_BRANDS[b]} {_ADJECTIVES[a]} {names[c].title()} {_NOUNS[n]} {m}"
        for b, a, c, n, m in zip(
            brand,
            rng.integers(0, len(_ADJECTIVES), n_skus),
            sku_category,
            rng.integers(0, len(_NOUNS), n_skus),
            rng.integers(100, 1000, n_skus),
            strict=True,
        )
    )
    brand = np.where(rng.random(n_skus) < _NULL_BRAND_RATE, -1, brand).astype(np.int32)
    cat_median = rng.uniform(8, 80, n_cat)
    base_cents = _round_price(cat_median[sku_category] * rng.lognormal(0, 0.5, n_skus) * 100)
    sku_trend = rng.normal(0, _SKU_TREND_SD, n_skus)

    # Taste groups: each category is core to a balanced number of groups.
    perm = rng.permutation(n_cat)
    n_core = min(_CORE_CATEGORIES, n_cat)
    core = np.array([[perm[(n_core * g + j) % n_cat] for j in range(n_core)] for g in range(n_groups)])
    pref = np.full((n_groups, n_cat), (1 - _CORE_MASS) / n_cat)
    core_weights = np.array([0.5, 0.3, 0.2][:n_core]) / sum([0.5, 0.3, 0.2][:n_core])
    for g in range(n_groups):
        pref[g, core[g]] += _CORE_MASS * core_weights
    group_pref = _Grouped.build(np.repeat(np.arange(n_groups), n_cat), pref.ravel(), n_groups)
    group_share = rng.dirichlet(np.full(n_groups, 8.0))

    user_group = _draw(np.cumsum(group_share), rng.random(n_users)).astype(np.int32)
    activity = rng.lognormal(0, 1.0, n_users)
    user_cdf = np.cumsum(activity) / activity.sum()
    user_app_p = rng.beta(2, 3, n_users)
    user_offset = _draw(np.cumsum(_OFFSET_WEIGHTS), rng.random(n_users)).astype(np.int8)
    user_web_agent = rng.integers(0, len(_WEB_AGENTS), n_users).astype(np.int16)
    user_app_agent = (_APP_AGENT_START + rng.integers(0, len(_APP_AGENTS), n_users)).astype(np.int16)

    # Personal favourites: drawn from the user's group taste, revisited across weeks.
    by_category = _Grouped.build(sku_category, popularity, n_cat)
    fav_groups = np.repeat(user_group, _FAVOURITES)
    fav_cats = group_pref.draw(fav_groups, rng.random(len(fav_groups))) % n_cat
    favourites = by_category.draw(fav_cats, rng.random(len(fav_cats))).reshape(n_users, _FAVOURITES)

    staples = _build_staples(config, sku_category, by_category)

    # Replenishment: the planner's demand estimate from the same model that drives shoppers.
    marginal = (group_share @ pref)[sku_category] * popularity / np.bincount(sku_category, popularity)[sku_category]
    views_per_day = config.events_per_day / _mean_events_per_session() * (1 + _VIEWS_EXTRA_MEAN)
    daily_units = views_per_day * marginal * _P_CART * _P_BUY * (1 + _EXTRA_QTY_MEAN)
    daily_units = daily_units + staples.daily_units(n_skus)
    lead_time = rng.integers(2, 11, n_skus).astype(np.int32)
    safety = rng.uniform(0.6, 1.8, n_skus)  # below ~1 these SKUs run out now and then
    reorder_point = np.ceil(daily_units * (lead_time + 1) * safety).astype(np.int64)
    order_qty = np.maximum(3, np.ceil(daily_units * rng.uniform(7, 21, n_skus))).astype(np.int64)
    initial = reorder_point + np.ceil(order_qty * rng.uniform(0.3, 1.0, n_skus)).astype(np.int64)

    return _World(
        config=config,
        category_names=names,
        sku_category=sku_category,
        published_category=published,
        sku_brand=brand,
        popularity=popularity,
        sku_trend=sku_trend,
        base_cents=base_cents,
        lead_time=lead_time,
        reorder_point=reorder_point,
        order_qty=order_qty,
        initial_on_hand=initial,
        group_core=core,
        group_pref=group_pref,
        group_cdf=np.cumsum(group_share),
        user_group=user_group,
        user_cdf=user_cdf,
        user_app_p=user_app_p,
        user_offset=user_offset,
        user_web_agent=user_web_agent,
        user_app_agent=user_app_agent,
        favourites=favourites.astype(np.int32),
        staples=staples,
        texts=_build_texts(config, titles, names),
    )


def _build_staples(config: GeneratorConfig, sku_category: np.ndarray, by_category: _Grouped) -> _Staples:
    """Pick the re-ordering customers and their staples, and plan every order of them.

    From a stream of its own, so the rest of the shop is the same at every ``reorder_share``.
    Staples are drawn by popularity within the consumable categories. A staple's cycle is its
    SKU's (uniform in ``reorder_cycle_days``: a box of toner outlasts a bag of coffee) times the
    customer's pace, clipped to the range; the first order falls within the first cycle, each
    gap is the cycle with 10 % noise and each quantity the staple's usual one with 25 % noise.
    """
    rng = _rng(config.seed, _Stream.STAPLES)
    low, high = config.reorder_cycle_days
    customers = np.flatnonzero(rng.random(config.users) < config.reorder_share)
    counts = rng.integers(_STAPLES[0], _STAPLES[1] + 1, len(customers))
    user = np.repeat(customers, counts)
    category = rng.choice(config.consumable_categories, len(user))
    sku = by_category.draw(category, rng.random(len(user)))
    sku_cycle = rng.uniform(low, high, len(sku_category))
    pace = np.repeat(rng.lognormal(0.0, _PACE_SD, len(customers)), counts)
    cycle = np.clip(sku_cycle[sku] * pace, low, high)
    quantity = 1 + rng.poisson(_STAPLE_QTY_EXTRA_MEAN, len(user))
    n_orders = math.ceil(config.days / low) + 1
    gaps = cycle[:, None] * np.clip(1 + rng.normal(0.0, _CYCLE_JITTER, (len(user), n_orders - 1)), 0.5, None)
    at = (rng.random(len(user)) * cycle)[:, None] + np.hstack([np.zeros((len(user), 1)), np.cumsum(gaps, axis=1)])
    qty = np.maximum(1, np.rint(quantity[:, None] * rng.lognormal(0.0, _QTY_JITTER, at.shape)))
    # A staple drawn twice for one customer is one staple.
    keep = np.sort(np.unique(user.astype(np.int64) * len(sku_category) + sku, return_index=True)[1])
    user, sku, cycle, quantity, at, qty = user[keep], sku[keep], cycle[keep], quantity[keep], at[keep], qty[keep]
    staple, slot = np.nonzero(at < config.days)
    day = at[staple, slot].astype(np.int64)
    order = np.lexsort((sku[staple], user[staple], day))
    return _Staples(
        user=user.astype(np.int32),
        sku=sku.astype(np.int32),
        cycle=cycle,
        quantity=quantity.astype(np.int64),
        order_day=day[order],
        order_staple=staple[order],
        order_qty=qty[staple, slot][order].astype(np.int64),
    )


def _mean_events_per_session() -> float:
    return (1 + _VIEWS_EXTRA_MEAN) * (1 + _P_CART * (1 + _P_BUY + (1 - _P_BUY) * _P_REMOVE))


@dataclass(frozen=True)
class _CatalogDay:
    """Prices, promotions and availability on one day."""

    day: int
    list_cents: np.ndarray
    active: np.ndarray
    discount: np.ndarray  # 0: not on promotion
    price_changed: np.ndarray
    deactivated: np.ndarray
    by_category: _Grouped

    @property
    def price_cents(self) -> np.ndarray:
        """What shoppers pay today: the list price, less any promotion."""
        promo = np.round(self.list_cents * (1 - self.discount)).astype(np.int64)
        return np.where(self.discount > 0, promo, self.list_cents)


def _promotions(world: _World, day: int, active: np.ndarray) -> np.ndarray:
    """Discount per SKU on ``day``: promotions start at random and run 3-7 days (stateless, so any day is cheap)."""
    n = world.n_skus
    discount = np.zeros(n)
    for start in range(max(0, day - _PROMO_DAYS[1] + 1), day + 1):
        rng = _rng(world.config.seed, _Stream.PROMO, start)
        starts = rng.random(n) < world.config.promo_start_rate
        length = rng.integers(_PROMO_DAYS[0], _PROMO_DAYS[1] + 1, n)
        cut = rng.uniform(*_PROMO_DISCOUNT, n)
        discount = np.where(starts & (start + length > day), cut, discount)
    return np.where(active, discount, 0.0)


def _iter_catalog(world: _World) -> Iterator[_CatalogDay]:
    """The catalogue day after day: occasional list-price changes, a few SKUs delisted for good."""
    n, seed = world.n_skus, world.config.seed
    list_cents = world.base_cents.copy()
    active = np.ones(n, dtype=bool)
    day = 0
    while True:
        changed = np.zeros(n, dtype=bool)
        deactivated = np.zeros(n, dtype=bool)
        if day > 0:
            rng = _rng(seed, _Stream.PRICE, day)
            changed = rng.random(n) < _PRICE_CHANGE_RATE
            list_cents = np.where(changed, _round_price(list_cents * rng.uniform(0.9, 1.15, n)), list_cents)
            deactivated = active & (_rng(seed, _Stream.ACTIVE, day).random(n) < _DEACTIVATION_RATE)
            active = active & ~deactivated
        discount = _promotions(world, day, active)
        weights = (
            world.popularity * np.exp(world.sku_trend * day) * active * np.where(discount > 0, _PROMO_VIEW_BOOST, 1.0)
        )
        yield _CatalogDay(
            day=day,
            list_cents=list_cents,
            active=active,
            discount=discount,
            price_changed=changed & active,
            deactivated=deactivated,
            by_category=_Grouped.build(world.sku_category, weights, len(world.category_names)),
        )
        day += 1


# ---------------------------------------------------------------------------------------------
# Rows: one dict of equally long numpy columns per batch of lines.

_ROW_COLUMNS: dict[str, type] = {
    "kind": np.int8,
    "etype": np.int8,
    "user": np.int32,  # -1: anonymous
    "sess_day": np.int32,
    "sess_seq": np.int32,
    "sku": np.int32,  # index into the SKU text table
    "qty": np.int32,
    "cents": np.int32,
    "ts": np.int64,  # epoch milliseconds, UTC
    "offset": np.int8,
    "order_day": np.int32,
    "order_seq": np.int32,  # -1: no order
    "channel": np.int8,
    "agent": np.int16,
    "ev_day": np.int32,
    "ev_seq": np.int32,
    "late": np.int16,  # days between event date and landing date
    "arrival": np.int64,  # when the line reached the landing file (epoch ms): its order there
    "defect": np.int16,  # malformed detail: field code, or cut percentage for truncated lines
}
Rows = dict[str, np.ndarray]


def _rows(n: int, **columns: np.ndarray | int) -> Rows:
    out: Rows = {}
    for name, dtype in _ROW_COLUMNS.items():
        value = columns.get(name, -1 if name in ("order_seq", "order_day", "user") else 0)
        out[name] = np.broadcast_to(np.asarray(value), (n,)).astype(dtype)
    return out


def _take(rows: Rows, index: np.ndarray) -> Rows:
    return {name: col[index] for name, col in rows.items()}


def _concat(parts: Sequence[Rows]) -> Rows:
    parts = [p for p in parts if len(p["kind"])]
    if not parts:
        return _rows(0)
    return {
        name: np.concatenate([p[name] for p in parts]).astype(dtype, copy=False) for name, dtype in _ROW_COLUMNS.items()
    }


def _size(rows: Rows) -> int:
    return len(rows["kind"])


# ---------------------------------------------------------------------------------------------
# Simulation


def _simulate_sessions(
    world: _World,
    catalog: _CatalogDay,
    rng: np.random.Generator,
    n_sessions: int,
    window: tuple[int, int],
    sellable: np.ndarray,
    diurnal: bool,
) -> Rows:
    """Browsing sessions as view -> add_to_cart -> remove/purchase rows (sess_seq = session index).

    Orders are numbered per call in ``order_seq``; the caller places ids in its namespace.
    """
    n = n_sessions
    cfg = world.config
    t0, t1 = window
    anon = rng.random(n) < cfg.anonymous_rate
    user = _draw(world.user_cdf, rng.random(n))
    group = np.where(anon, _draw(world.group_cdf, rng.random(n)), world.user_group[user])
    app = np.where(anon, rng.random(n) < 0.35, rng.random(n) < world.user_app_p[user])
    offset = np.where(anon, _draw(np.cumsum(_OFFSET_WEIGHTS), rng.random(n)), world.user_offset[user])
    anon_agent = np.where(
        app,
        _APP_AGENT_START + rng.integers(0, len(_APP_AGENTS), n),
        rng.integers(0, len(_WEB_AGENTS), n),
    )
    agent = np.where(anon, anon_agent, np.where(app, world.user_app_agent[user], world.user_web_agent[user]))
    user = np.where(anon, -1, user)
    if diurnal:
        hours = _draw(np.cumsum(_HOUR_WEIGHTS) / sum(_HOUR_WEIGHTS), rng.random(n))
        start = t0 + hours * 3_600_000 + rng.integers(0, 3_600_000, n)
    else:
        start = rng.integers(t0, t1, n)

    n_views = 1 + rng.poisson(_VIEWS_EXTRA_MEAN, n)
    sess = np.repeat(np.arange(n), n_views)
    first = np.cumsum(n_views) - n_views
    gaps = rng.exponential(35_000, len(sess)).astype(np.int64) + 1000
    gaps[first] = 0
    elapsed = np.cumsum(gaps)
    view_ts = start[sess] + elapsed - elapsed[first][sess]

    n_cat = len(world.category_names)
    main_category = world.group_pref.draw(group, rng.random(n)) % n_cat
    source = rng.random(len(sess))
    is_fav = (user[sess] >= 0) & (source < _P_FAVOURITE)
    in_main = (source >= _P_FAVOURITE) & (source < _P_FAVOURITE + (1 - _P_FAVOURITE) * _P_SESSION_CATEGORY)
    any_cat = world.group_pref.draw(group[sess], rng.random(len(sess))) % n_cat
    view_cat = np.where(in_main, main_category[sess], any_cat)
    view_sku = catalog.by_category.draw(view_cat, rng.random(len(sess)))
    fav_pick = rng.integers(0, _FAVOURITES, len(sess))
    view_sku = np.where(is_fav, world.favourites[np.maximum(user[sess], 0), fav_pick], view_sku)

    p_cart = _P_CART * np.where(catalog.discount[view_sku] > 0, _PROMO_CART_BOOST, 1.0) * sellable[view_sku]
    carted = np.flatnonzero(rng.random(len(sess)) < p_cart)
    cart_sess = sess[carted]
    cart_ts = view_ts[carted] + 2000 + rng.exponential(15_000, len(carted)).astype(np.int64)
    cart_qty = 1 + np.minimum(rng.poisson(_EXTRA_QTY_MEAN, len(carted)), 5)
    bought = rng.random(len(carted)) < _P_BUY
    removed = ~bought & (rng.random(len(carted)) < _P_REMOVE)
    remove_ts = cart_ts[removed] + 3000 + rng.exponential(60_000, int(removed.sum())).astype(np.int64)

    last_ts = view_ts[first + n_views - 1].copy()
    np.maximum.at(last_ts, cart_sess, cart_ts)
    np.maximum.at(last_ts, cart_sess[removed], remove_ts)
    has_order = np.zeros(n, dtype=bool)
    has_order[cart_sess[bought]] = True
    order_seq = np.cumsum(has_order) - 1
    checkout = last_ts + 5000 + rng.exponential(40_000, n).astype(np.int64)
    buy_sess = cart_sess[bought]
    line_no = np.arange(len(buy_sess)) - np.searchsorted(buy_sess, buy_sess, side="left")
    buy_ts = checkout[buy_sess] + line_no * 7
    np.maximum.at(last_ts, buy_sess, buy_ts)

    parts_sess = np.concatenate([sess, cart_sess, cart_sess[removed], buy_sess])
    etype = np.repeat([_VIEW, _CART, _REMOVE, _PURCHASE], [len(sess), len(carted), int(removed.sum()), len(buy_sess)])
    sku = np.concatenate([view_sku, view_sku[carted], view_sku[carted][removed], view_sku[carted][bought]])
    qty = np.concatenate([np.ones(len(sess), np.int64), cart_qty, cart_qty[removed], cart_qty[bought]])
    ts = np.concatenate([view_ts, cart_ts, remove_ts, buy_ts])
    if diurnal:
        # Keep each session inside its day: late-evening sessions start a little earlier.
        overflow = np.maximum(0, last_ts - (t1 - 1))
        ts = np.maximum(ts - overflow[parts_sess], t0)
    rows = _rows(
        len(ts),
        etype=etype,
        user=user[parts_sess],
        sess_seq=parts_sess,
        sku=sku,
        qty=qty,
        cents=catalog.price_cents[sku],
        ts=ts,
        offset=offset[parts_sess],
        order_seq=np.where(etype == _PURCHASE, order_seq[parts_sess], -1),
        channel=app[parts_sess],
        agent=agent[parts_sess],
    )
    if not diurnal:
        rows = _take(rows, np.flatnonzero(rows["ts"] < t1))
    return rows


def _staple_orders(
    world: _World,
    catalog: _CatalogDay,
    rng: np.random.Generator,
    day: int,
    t0: int,
    sellable: np.ndarray,
    first_session: int,
    first_order: int,
) -> tuple[Rows, int]:
    """The day's re-orders: one quick session and order per customer with staples due, every due staple
    viewed, carted and bought (one that cannot be sold today is skipped until its next order).

    Returns the rows (sessions and orders numbered from ``first_session`` and ``first_order``) and
    the number of sessions.
    """
    staples = world.staples
    lo, hi = np.searchsorted(staples.order_day, [day, day + 1])
    staple, qty = staples.order_staple[lo:hi], staples.order_qty[lo:hi]
    due = sellable[staples.sku[staple]]
    staple, qty = staple[due], qty[due]
    user, sku = staples.user[staple], staples.sku[staple]
    customers, session, lines = np.unique(user, return_inverse=True, return_counts=True)
    line = np.arange(len(user)) - np.searchsorted(user, user, side="left")  # orders are sorted by user
    start = t0 + rng.integers(_REORDER_HOURS[0] * 3_600_000, _REORDER_HOURS[1] * 3_600_000, len(customers))
    app = rng.random(len(customers)) < world.user_app_p[customers]
    agent = np.where(app, world.user_app_agent[customers], world.user_web_agent[customers])
    view_ts = start[session] + line * 20_000
    buy_ts = start[session] + lines[session] * 20_000 + 30_000 + line * 7
    etype = np.repeat([_VIEW, _CART, _PURCHASE], len(user))
    every = np.tile(np.arange(len(user)), 3)
    rows = _rows(
        len(etype),
        etype=etype,
        user=user[every],
        sess_seq=first_session + session[every],
        sku=sku[every],
        qty=np.concatenate([np.ones(len(user), np.int64), qty, qty]),
        cents=catalog.price_cents[sku[every]],
        ts=np.concatenate([view_ts, view_ts + 5_000, buy_ts]),
        offset=world.user_offset[user[every]],
        order_seq=np.where(etype == _PURCHASE, first_order + session[every], -1),
        channel=app[session[every]],
        agent=agent[session[every]],
    )
    return rows, len(customers)


def _limit_to_stock(rows: Rows, on_hand: np.ndarray) -> np.ndarray:
    """Fulfil purchases first come first served; once a SKU runs out it sells nothing more that day.

    Returns the row indices to keep (quantities of the last fulfilled lines are cut to what was left).
    """
    buys = np.flatnonzero(rows["etype"] == _PURCHASE)
    order = buys[np.lexsort((rows["ts"][buys], rows["sku"][buys]))]
    sku, qty = rows["sku"][order], rows["qty"][order].astype(np.int64)
    before = np.cumsum(qty) - qty
    group_first = np.r_[True, sku[1:] != sku[:-1]] if len(sku) else np.zeros(0, dtype=bool)
    sold_before = before - before[group_first][np.cumsum(group_first) - 1]
    kept = np.clip(on_hand[sku] - sold_before, 0, qty)
    rows["qty"][order] = kept
    drop = np.zeros(_size(rows), dtype=bool)
    drop[order[kept == 0]] = True
    return np.flatnonzero(~drop)


@dataclass
class _ShopState:
    """What carries over from one day to the next."""

    on_hand: np.ndarray
    on_order: np.ndarray
    arrivals: dict[int, np.ndarray] = field(default_factory=dict)
    returns: dict[int, list[Rows]] = field(default_factory=dict)
    deliveries: dict[int, list[Rows]] = field(default_factory=dict)  # late events and replays by landing day


def _day_start_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def _schedule(queue: dict[int, list[Rows]], rows: Rows, landing: np.ndarray) -> None:
    for day in np.unique(landing):
        queue.setdefault(int(day), []).append(_take(rows, np.flatnonzero(landing == day)))


@dataclass
class _DayResult:
    lines: Rows
    catalog: _CatalogDay
    on_hand: np.ndarray
    on_order: np.ndarray
    stockout_lines: int
    bot_sessions: int


@dataclass(frozen=True)
class _Trade:
    """The shop's real business of one day, before anything about delivery is decided."""

    events: Rows  # every event that happened, ids assigned in time order
    purchases: Rows  # fulfilled purchase lines
    next_session: int  # first session number free for bots
    lost_lines: int  # purchase lines stock could not serve


def _simulate_day(world: _World, catalog: _CatalogDay, state: _ShopState, day: int) -> _DayResult:
    """One day: trade (behaviour, stock, returns), then what lands in the day's files."""
    t0 = _day_start_ms(world.config.start_date + timedelta(days=day))
    trade = _trade_day(world, catalog, state, day, t0)
    lines, bot_sessions = _land_day(world, catalog, state, day, t0, trade)
    return _DayResult(
        lines=lines,
        catalog=catalog,
        on_hand=state.on_hand.copy(),
        on_order=state.on_order.copy(),
        stockout_lines=trade.lost_lines,
        bot_sessions=bot_sessions,
    )


def _trade_day(world: _World, catalog: _CatalogDay, state: _ShopState, day: int, t0: int) -> _Trade:
    cfg, seed = world.config, world.config.seed
    arriving = state.arrivals.pop(day, np.zeros(world.n_skus, dtype=np.int64))
    state.on_hand += arriving
    state.on_order -= arriving
    sellable = catalog.active & (state.on_hand > 0)

    weekday = (cfg.start_date + timedelta(days=day)).weekday()
    volume = _rng(seed, _Stream.VOLUME, day)
    factor = _WEEKDAY_FACTORS[weekday] / np.mean(_WEEKDAY_FACTORS) * (1 + _GLOBAL_TREND * day)
    factor *= volume.lognormal(0, _DAY_NOISE_SD)
    n_sessions = int(volume.poisson(cfg.events_per_day * factor / _mean_events_per_session()))
    window = (t0, t0 + DAY_MS)
    sim = _simulate_sessions(world, catalog, _rng(seed, _Stream.SESSIONS, day), n_sessions, window, sellable, True)
    if len(world.staples.order_day):
        first_order = int(sim["order_seq"].max(initial=-1)) + 1
        rng = _rng(seed, _Stream.REORDER, day)
        reorders, n_reorders = _staple_orders(world, catalog, rng, day, t0, sellable, n_sessions, first_order)
        sim = _concat([sim, reorders])
        n_sessions += n_reorders
    n_purchases = int((sim["etype"] == _PURCHASE).sum())
    sim = _take(sim, _limit_to_stock(sim, state.on_hand))
    sim["sess_day"][:] = day
    sim["order_day"][:] = np.where(sim["order_seq"] >= 0, day, -1)
    purchases = _take(sim, np.flatnonzero(sim["etype"] == _PURCHASE))
    sold = np.bincount(purchases["sku"], purchases["qty"], minlength=world.n_skus).astype(np.int64)

    returns = _concat(state.returns.pop(day, []))
    returns["sess_day"][:] = day
    returns["sess_seq"] = n_sessions + np.arange(_size(returns))
    returned = np.bincount(returns["sku"], returns["qty"], minlength=world.n_skus).astype(np.int64)
    state.on_hand += returned - sold
    reorder = catalog.active & (state.on_hand + state.on_order <= world.reorder_point)
    state.on_order += np.where(reorder, world.order_qty, 0)
    for lead in np.unique(world.lead_time[reorder]):
        skus = np.flatnonzero(reorder & (world.lead_time == lead))
        due = state.arrivals.setdefault(day + int(lead), np.zeros(world.n_skus, dtype=np.int64))
        due[skus] += world.order_qty[skus]
    _schedule_returns(world, purchases, state, day, t0)

    # Event ids follow event time, as a real event log's do.
    events = _concat([sim, returns])
    events = _take(events, np.argsort(events["ts"], kind="stable"))
    n_events = _size(events)
    if n_events >= _SEQ_LIMIT:
        raise ValueError(f"{n_events} events in one day exceed the id space ({_SEQ_LIMIT})")
    events.update(ev_day=np.full(n_events, day, np.int32), ev_seq=np.arange(n_events), arrival=events["ts"].copy())
    return _Trade(
        events=events,
        purchases=purchases,
        next_session=n_sessions + _size(returns),
        lost_lines=n_purchases - _size(purchases),
    )


def _schedule_returns(world: _World, purchases: Rows, state: _ShopState, day: int, t0: int) -> None:
    """A few % of purchased lines come back 1-14 days later, during opening hours."""
    cfg = world.config
    rng = _rng(cfg.seed, _Stream.RETURNS, day)
    back = np.flatnonzero(rng.random(_size(purchases)) < cfg.return_rate)
    back_day = day + rng.integers(_RETURN_DAYS[0], _RETURN_DAYS[1] + 1, len(back))
    back_qty = rng.integers(1, purchases["qty"][back] + 1) if len(back) else np.zeros(0, np.int64)
    back_ts = (back_day - day) * DAY_MS + t0 + rng.integers(8 * 3_600_000, 21 * 3_600_000, len(back))
    due = back_day <= cfg.days - 1
    rows = _take(purchases, back[due])
    rows.update(etype=np.full(int(due.sum()), _RETURN, np.int8), qty=back_qty[due].astype(np.int32), ts=back_ts[due])
    _schedule(state.returns, rows, back_day[due])


def _land_day(
    world: _World, catalog: _CatalogDay, state: _ShopState, day: int, t0: int, trade: _Trade
) -> tuple[Rows, int]:
    """The day's file content in arrival order: on-time events, earlier days' late events and replays,
    bots, order noise, malformed lines and duplicates. Works on row indices, so a big day is copied
    only once more."""
    cfg, seed = world.config, world.config.seed
    last_day = cfg.days - 1
    events = trade.events
    n_events = _size(events)

    rng = _rng(seed, _Stream.LATE, day)
    u = rng.random(n_events)
    late = np.where(u < cfg.late_rate, _draw(np.array([0.6, 0.9, 1.0]), rng.random(n_events)) + 1, 0)
    very_late = (u >= cfg.late_rate) & (u < cfg.late_rate + cfg.very_late_rate)
    late = np.where(very_late, rng.integers(_VERY_LATE_DAYS[0], _VERY_LATE_DAYS[1] + 1, n_events), late)
    # Nothing is held back past the last landing day: every event that happened is delivered.
    events["late"] = np.where(day + late <= last_day, late, 0).astype(np.int16)
    shown = np.flatnonzero(np.isin(events["etype"], (_PURCHASE, _RETURN))) if cfg.orders_only else np.arange(n_events)
    deferred = shown[events["late"][shown] > 0]
    _schedule(state.deliveries, _take(events, deferred), day + events["late"][deferred])
    on_time = shown[events["late"][shown] == 0]

    rng = _rng(seed, _Stream.REPLAY, day)
    replay = on_time[rng.random(len(on_time)) < cfg.replay_rate]
    replay_day = day + rng.integers(1, _MAX_LATE_DAYS + 1, len(replay))
    replays = _take(events, replay[replay_day <= last_day])
    replays["kind"][:] = _Kind.REPLAY
    _schedule(state.deliveries, replays, replay_day[replay_day <= last_day])

    noise: list[Rows] = []
    bot_sessions = 0
    if not cfg.orders_only and cfg.bot_sessions_per_day:
        window = (t0, t0 + DAY_MS)
        noise.append(_bot_rows(world, catalog, _rng(seed, _Stream.BOTS, day), window, trade.next_session))
        bot_sessions = cfg.bot_sessions_per_day
    noise += _order_noise(world, trade.purchases, catalog, day, t0 + DAY_MS)
    noise.append(_malformed_rows(world, events, on_time, _rng(seed, _Stream.MALFORMED, day)))
    extras = _concat(noise)
    extras.update(
        ev_day=np.full(_size(extras), day, np.int32),
        ev_seq=n_events + np.arange(_size(extras)),
        arrival=extras["ts"].copy(),
    )
    arrivals = _concat(state.deliveries.pop(day, []))
    arrivals["arrival"] = t0 + _rng(seed, _Stream.ARRIVAL, day).integers(0, DAY_MS, _size(arrivals))

    pool = _concat([events, arrivals, extras])
    late_arrivals = n_events + np.flatnonzero(arrivals["kind"] == _Kind.VALID)
    replayed = n_events + np.flatnonzero(arrivals["kind"] == _Kind.REPLAY)
    valid = np.concatenate([on_time, late_arrivals])
    dups = valid[_rng(seed, _Stream.DUPLICATE, day).random(len(valid)) < cfg.duplicate_rate]
    landed = np.concatenate([valid, replayed, n_events + _size(arrivals) + np.arange(_size(extras))])
    select = np.concatenate([landed, dups])
    order = np.argsort(pool["arrival"][select], kind="stable")
    lines = _take(pool, select[order])
    lines["kind"][order >= len(landed)] = _Kind.DUPLICATE
    return lines, bot_sessions


def _bot_rows(
    world: _World, catalog: _CatalogDay, rng: np.random.Generator, window: tuple[int, int], sess0: int
) -> Rows:
    """Crawlers: hundreds of views a second or so apart, some announcing themselves, some not."""
    n = world.config.bot_sessions_per_day
    sizes = rng.integers(201, 800, n)
    sess = np.repeat(np.arange(n), sizes)
    gaps = rng.integers(200, 2000, len(sess))
    first = np.cumsum(sizes) - sizes
    gaps[first] = 0
    elapsed = np.cumsum(gaps)
    start = rng.integers(window[0], window[1] - 2 * 3_600_000, n)
    stealth = rng.random(n) < 0.4
    agent = np.where(
        stealth,
        _STEALTH_AGENT_START + rng.integers(0, len(_STEALTH_BOT_AGENTS), n),
        _BOT_AGENT_START + rng.integers(0, len(_BOT_AGENTS), n),
    )
    sku = rng.integers(0, world.n_skus, len(sess))
    return _rows(
        len(sess),
        kind=_Kind.BOT,
        etype=_VIEW,
        sess_day=catalog.day,
        sess_seq=sess0 + sess,
        sku=sku,
        qty=1,
        cents=catalog.price_cents[sku],
        ts=start[sess] + elapsed - elapsed[first][sess],
        offset=_UTC_OFFSET,
        agent=agent[sess],
    )


def _order_noise(world: _World, purchases: Rows, catalog: _CatalogDay, day: int, t1: int) -> list[Rows]:
    """Back-office lines on real orders: postage, discounts, bank charges, manual fixes, free gifts."""
    cfg = world.config
    rng = _rng(cfg.seed, _Stream.ORDER_NOISE, day)
    _, first = np.unique(purchases["order_seq"], return_index=True)
    orders = _take(purchases, first)
    n = _size(orders)
    non_product = np.flatnonzero(rng.random(n) < cfg.non_product_rate)
    code = rng.integers(0, len(NON_PRODUCT_SKUS), len(non_product))
    fixed = np.array([1800, 0, 1500, 0])[code]
    cents = np.where(fixed > 0, fixed, rng.integers(100, 5000, len(non_product)))
    extra = _take(orders, non_product)
    extra.update(
        kind=np.full(len(code), _Kind.NON_PRODUCT, np.int8),
        sku=(world.n_skus + code).astype(np.int32),
        qty=np.ones(len(code), np.int32),
        cents=cents.astype(np.int64),
        ts=np.minimum(extra["ts"] + 50, t1 - 1),
    )
    free = _take(orders, np.flatnonzero(rng.random(n) < cfg.zero_price_rate))
    gift = rng.choice(np.flatnonzero(catalog.active), _size(free)) if catalog.active.any() else free["sku"]
    free.update(
        kind=np.full(_size(free), _Kind.ZERO_PRICE, np.int8),
        sku=gift.astype(np.int32),
        qty=np.ones(_size(free), np.int32),
        cents=np.zeros(_size(free), np.int64),
        ts=np.minimum(free["ts"] + 60, t1 - 1),
    )
    return [extra, free]


def _malformed_rows(world: _World, events: Rows, candidates: np.ndarray, rng: np.random.Generator) -> Rows:
    """Copies of real events, each broken in exactly one way; the defect column says how."""
    n = int(rng.binomial(len(candidates), world.config.malformed_rate)) if len(candidates) else 0
    # Distinct templates: two copies of one event, both missing event_id, would be an unplanted duplicate.
    bad = _take(events, candidates[np.sort(rng.choice(len(candidates), n, replace=False))])
    kinds = _MALFORMED_START + rng.integers(0, len(MALFORMED_KINDS), n)
    bad["kind"] = kinds.astype(np.int8)
    defect = np.zeros(n, np.int16)
    missing = kinds == _Kind.MISSING_FIELD
    defect[missing] = rng.integers(0, len(REQUIRED_EVENT_FIELDS), int(missing.sum()))
    wrong = kinds == _Kind.WRONG_TYPE
    defect[wrong] = rng.integers(0, len(WRONG_TYPE_VALUES), int(wrong.sum()))
    cut = kinds == _Kind.TRUNCATED
    defect[cut] = rng.integers(30, 90, int(cut.sum()))
    bad["defect"] = defect
    bad["cents"] = np.where(kinds == _Kind.NEGATIVE_PRICE, -np.maximum(bad["cents"], 1), bad["cents"])
    unknown_sku = kinds == _Kind.UNKNOWN_SKU
    bad["sku"][unknown_sku] = (
        world.n_skus + len(NON_PRODUCT_SKUS) + rng.integers(0, _UNKNOWN_SKU_POOL, unknown_sku.sum())
    )
    unknown_type = kinds == _Kind.UNKNOWN_EVENT_TYPE
    bad["etype"][unknown_type] = len(EVENT_TYPES) + rng.integers(0, len(UNKNOWN_EVENT_TYPES), unknown_type.sum())
    bad["late"][:] = 0
    return bad


# ---------------------------------------------------------------------------------------------
# Rendering: numpy codes -> text lines with pyarrow string kernels.


def _join(*parts: pa.Array | str, skip_nulls: bool = False) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "", null_handling="skip" if skip_nulls else "emit_null")


def _ids(texts: _Texts, prefixes: pa.Array, prefix_index: np.ndarray, seq: np.ndarray, quote: str) -> pa.Array:
    """``<prefix><8-digit seq>`` from a small prefix table, without per-row formatting."""
    return _join(
        prefixes.take(pa.array(prefix_index)),
        texts.digits4.take(pa.array(seq // 10_000)),
        texts.digits4.take(pa.array(seq % 10_000)),
        quote,
    )


def _money(texts: _Texts, cents: np.ndarray) -> pa.Array:
    sign = pa.array(["", "-"]).take(pa.array((cents < 0).astype(np.int8)))
    whole = pc.cast(pa.array(np.abs(cents) // 100), pa.string())
    return _join(sign, whole, ".", texts.cents2.take(pa.array(np.abs(cents) % 100)))


def _timestamps(texts: _Texts, ts: np.ndarray, offset: np.ndarray, quote: str) -> pa.Array:
    minutes = np.array([m for _, m in _OFFSETS], dtype=np.int64)[offset]
    local = ts + minutes * 60_000
    local_day = local // DAY_MS
    first = int(local_day.min()) if len(local_day) else 0
    last = int(local_day.max()) if len(local_day) else 0
    dates = pa.array(np.arange(first, last + 1).astype("datetime64[D]").astype(str))
    in_day = local - local_day * DAY_MS
    return _join(
        quote,
        dates.take(pa.array(local_day - first)),
        "T",
        texts.hms.take(pa.array(in_day // 1000)),
        texts.millis.take(pa.array(in_day % 1000)),
        texts.offset.take(pa.array(offset)),
        quote,
    )


@dataclass(frozen=True)
class _IdSpace:
    """Id prefixes: nightly ids embed the day (``ev-20260101-``); stream ids their batch."""

    events: list[str]
    sessions: list[str]
    orders: list[str]


def _render_events(world: _World, rows: Rows, ids: _IdSpace, fmt: str) -> pa.Array:
    """One text line (with newline) per row, defects applied."""
    t = world.texts
    is_json = fmt == "jsonl"
    q = '"' if is_json else ""

    def prefixed(names: list[str]) -> pa.Array:
        return pa.array([q + name for name in names])

    has_order = rows["order_seq"] >= 0
    order_id = _ids(t, prefixed(ids.orders), np.maximum(rows["order_day"], 0), rows["order_seq"].clip(0), q)
    if is_json:
        order_id = pc.if_else(
            pa.array(has_order), _join(',"order_id":', order_id), pa.nulls(len(has_order), pa.string())
        )
    else:
        order_id = pc.if_else(pa.array(has_order), order_id, "")
    users = rows["user"].copy()
    users[users < 0] = world.config.users
    values = {
        "event_id": _ids(t, prefixed(ids.events), rows["ev_day"], rows["ev_seq"], q),
        "event_type": (t.type_json if is_json else t.type_csv).take(pa.array(rows["etype"])),
        "user_id": (t.user_json if is_json else t.user_csv).take(pa.array(users)),
        "session_id": _ids(t, prefixed(ids.sessions), rows["sess_day"], rows["sess_seq"], q),
        "sku": (t.sku_json if is_json else t.sku_csv).take(pa.array(rows["sku"])),
        "quantity": pc.cast(pa.array(rows["qty"]), pa.string()),
        "unit_price": _money(t, rows["cents"]),
        "currency": q + CURRENCY + q,
        "event_ts": _timestamps(t, rows["ts"], rows["offset"], q),
        "order_id": order_id,
        "channel": (t.channel_json if is_json else t.channel_csv).take(pa.array(rows["channel"])),
        "user_agent": (t.agent_json if is_json else t.agent_csv).take(pa.array(rows["agent"])),
    }
    parts: list[pa.Array | str] = []
    if is_json:
        for i, name in enumerate(EVENT_FIELDS):
            if name == "order_id":  # absent, not null, on events without an order
                parts.append(values[name])
            else:
                parts += [("{" if i == 0 else ",") + f'"{name}":', values[name]]
        lines = _join(*parts, "}\n", skip_nulls=True)
    else:
        for name in EVENT_FIELDS:
            parts += [values[name], ","]
        lines = _join(*parts[:-1], "\n")
    return _break_lines(lines, rows["kind"], rows["defect"], is_json)


# A required field and its value, with the comma that follows it (none of them is last on a line).
_JSON_MISSING = {name: re.compile(re.escape(f'"{name}":') + r'"[^"]*",') for name in REQUIRED_EVENT_FIELDS}
_JSON_VALUE = {
    "quantity": re.compile(r'"quantity":-?\d+'),
    "unit_price": re.compile(r'"unit_price":-?[0-9.]+'),
    "event_ts": re.compile(r'"event_ts":"[^"]*"'),
}


def _break_line(line: str, kind: int, defect: int, is_json: bool) -> str:
    """Apply one planted defect to a rendered line (only malformed rows come here: a tiny share)."""
    if kind == _Kind.TRUNCATED:
        if is_json:  # cut before the closing brace: never valid JSON
            return line[: max(2, len(line) * defect // 100)] + "\n"
        return ",".join(line.split(",", len(EVENT_FIELDS) - 1)[: 3 + defect % 6]) + "\n"
    if kind == _Kind.MISSING_FIELD:
        name, value = REQUIRED_EVENT_FIELDS[defect], ""
    else:
        name, value = list(WRONG_TYPE_VALUES.items())[defect]
    if is_json:
        if kind == _Kind.MISSING_FIELD:
            return _JSON_MISSING[name].sub("", line, count=1)
        return _JSON_VALUE[name].sub(f'"{name}":"{value}"', line, count=1)
    fields = line.rstrip("\n").split(",", len(EVENT_FIELDS) - 1)
    fields[EVENT_FIELDS.index(name)] = value
    return ",".join(fields) + "\n"


def _break_lines(lines: pa.Array, kind: np.ndarray, defect: np.ndarray, is_json: bool) -> pa.Array:
    mask = np.isin(kind, (_Kind.TRUNCATED, _Kind.MISSING_FIELD, _Kind.WRONG_TYPE))
    if not mask.any():
        return lines
    broken = [
        _break_line(line, int(k), int(d), is_json)
        for line, k, d in zip(lines.filter(pa.array(mask)).to_pylist(), kind[mask], defect[mask], strict=True)
    ]
    return pc.replace_with_mask(lines, pa.array(mask), pa.array(broken))


def _json_lines(fields: Sequence[tuple[str, pa.Array | str]]) -> pa.Array:
    parts: list[pa.Array | str] = []
    for i, (name, value) in enumerate(fields):
        parts += [("{" if i == 0 else ",") + f'"{name}":', value]
    return _join(*parts, "}\n")


def _text_bytes(lines: pa.Array) -> memoryview:
    """The concatenated text of a string array, straight from its data buffer."""
    if len(lines) == 0:
        return memoryview(b"")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4)
    return memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]]


class _Sink:
    """A landing file being written: plain or gzip, byte-identical across runs (gzip mtime 0)."""

    def __init__(self, path: Path, compress: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._raw = path.open("wb")
        self._out: IO[bytes] = (
            gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0, compresslevel=1)
            if compress
            else self._raw
        )

    def write(self, data: bytes | memoryview) -> None:
        self._out.write(data)

    def close(self) -> None:
        if self._out is not self._raw:
            self._out.close()
        self._raw.close()


# ---------------------------------------------------------------------------------------------
# Writing the landing zone


def _kind_counts(rows: Rows) -> dict[str, int]:
    counts = np.bincount(rows["kind"], minlength=len(_Kind))
    return {kind.name.lower(): int(counts[kind]) for kind in _Kind}


def _write_event_day(world: _World, result: _DayResult, day: int, out: Path, ids: _IdSpace) -> dict:
    cfg = world.config
    rows = result.lines
    landing = cfg.start_date + timedelta(days=day)
    folder = out / "events" / f"date={landing.isoformat()}"
    n_parts = max(1, math.ceil(_size(rows) / cfg.rows_per_file))
    # Parts split the day by arrival time, so a duplicate always shares its original's file.
    t0 = _day_start_ms(landing)
    part = np.clip((rows["arrival"] - t0) * n_parts // DAY_MS, 0, n_parts - 1)
    bounds = np.searchsorted(part, np.arange(n_parts + 1))  # rows are in arrival order
    files: dict[str, int] = {}
    for p in range(n_parts):
        in_part = {name: col[bounds[p] : bounds[p + 1]] for name, col in rows.items()}
        gz = cfg.events_format == "jsonl" and cfg.gzip_every > 0 and (day + p) % cfg.gzip_every == cfg.gzip_every - 1
        file_name = f"part-{p:05d}." + ("csv" if cfg.events_format == "csv" else "jsonl.gz" if gz else "jsonl")
        sink = _Sink(folder / file_name, compress=gz)
        if cfg.events_format == "csv":
            sink.write((",".join(EVENT_FIELDS) + "\n").encode())
        for start in range(0, _size(in_part), _CHUNK_ROWS):
            chunk = {name: col[start : start + _CHUNK_ROWS] for name, col in in_part.items()}
            sink.write(_text_bytes(_render_events(world, chunk, ids, cfg.events_format)))
        sink.close()
        files[(folder / file_name).relative_to(out).as_posix()] = _size(in_part)
    return _event_manifest(rows, result, files)


def _event_manifest(rows: Rows, result: _DayResult, files: dict[str, int]) -> dict:
    kinds = _kind_counts(rows)
    valid = rows["kind"] == _Kind.VALID
    late_days, late_counts = np.unique(rows["late"][valid & (rows["late"] > 0)], return_counts=True)
    by_type = np.bincount(rows["etype"][valid], minlength=len(EVENT_TYPES))
    malformed = {name: kinds[_Kind(_MALFORMED_START + i).name.lower()] for i, name in enumerate(MALFORMED_KINDS)}
    return {
        "lines": _size(rows),
        "valid": kinds["valid"],
        "late": int(late_counts.sum()),
        "late_by_days": {str(int(d)): int(c) for d, c in zip(late_days, late_counts, strict=True)},
        "anonymous": int((valid & (rows["user"] < 0)).sum()),
        "by_type": {name: int(by_type[i]) for i, name in enumerate(EVENT_TYPES)},
        "bot": kinds["bot"],
        "bot_sessions": result.bot_sessions,
        "duplicate": kinds["duplicate"],
        "replay": kinds["replay"],
        "non_product": kinds["non_product"],
        "zero_price": kinds["zero_price"],
        "malformed": malformed,
        "malformed_total": sum(malformed.values()),
        "files": files,
    }


def _write_products(world: _World, catalog: _CatalogDay, landing: date, out: Path) -> dict:
    t = world.texts
    n = world.n_skus
    category = np.where(world.published_category < 0, len(world.category_names), world.published_category)
    brand = np.where(world.sku_brand < 0, len(_BRANDS), world.sku_brand)
    lines = _json_lines(
        [
            ("sku", t.sku_json.slice(0, n)),
            ("title", t.title_json),
            ("category", t.category_json.take(pa.array(category))),
            ("brand", t.brand_json.take(pa.array(brand))),
            ("unit_price", _money(t, catalog.list_cents)),
            ("active", pa.array(["false", "true"]).take(pa.array(catalog.active.astype(np.int8)))),
        ]
    )
    path = out / "products" / f"date={landing.isoformat()}" / "part-00000.jsonl"
    sink = _Sink(path, compress=False)
    sink.write(_text_bytes(lines))
    sink.close()
    skus = np.array(t.sku_csv.slice(0, n).to_pylist())
    return {
        "lines": n,
        "active": int(catalog.active.sum()),
        "null_category": int((world.published_category < 0).sum()),
        "null_brand": int((world.sku_brand < 0).sum()),
        "on_promotion": skus[catalog.discount > 0].tolist(),
        "price_changed": skus[catalog.price_changed].tolist(),
        "deactivated": skus[catalog.deactivated].tolist(),
        "file": path.relative_to(out).as_posix(),
    }


def _write_inventory(world: _World, result: _DayResult, landing: date, out: Path) -> dict:
    t = world.texts
    n = world.n_skus
    snapshot = f'"{landing.isoformat()}T23:59:59.000Z"'
    lines = _json_lines(
        [
            ("sku", t.sku_json.slice(0, n)),
            ("on_hand", pc.cast(pa.array(result.on_hand), pa.string())),
            ("on_order", pc.cast(pa.array(result.on_order), pa.string())),
            ("lead_time_days", pc.cast(pa.array(world.lead_time), pa.string())),
            ("snapshot_ts", snapshot),
        ]
    )
    path = out / "inventory" / f"date={landing.isoformat()}" / "part-00000.jsonl"
    sink = _Sink(path, compress=False)
    sink.write(_text_bytes(lines))
    sink.close()
    out_of_stock = result.catalog.active & (result.on_hand == 0)
    return {
        "lines": n,
        "out_of_stock": int(out_of_stock.sum()),
        "stockout_lost_lines": result.stockout_lines,
        "file": path.relative_to(out).as_posix(),
    }


def _nightly_ids(config: GeneratorConfig) -> _IdSpace:
    stamps = [(config.start_date + timedelta(days=d)).strftime("%Y%m%d") for d in range(config.days)]
    return _IdSpace(
        events=[f"ev-{s}-" for s in stamps], sessions=[f"s-{s}-" for s in stamps], orders=[f"o-{s}-" for s in stamps]
    )


def _planted(world: _World) -> dict:
    staples = world.staples
    users, skus = world.texts.user_csv, world.texts.sku_csv
    return {
        "categories": list(world.category_names),
        "taste_groups": {
            str(g): [world.category_names[c] for c in world.group_core[g]] for g in range(len(world.group_core))
        },
        "user_group": world.user_group.tolist(),
        "weekday_factors": list(_WEEKDAY_FACTORS),
        "promotion_discount": list(_PROMO_DISCOUNT),
        "return_days": list(_RETURN_DAYS),
        "non_product_skus": list(NON_PRODUCT_SKUS),
        "unknown_event_types": list(UNKNOWN_EVENT_TYPES),
        # The re-ordering customers' staples: [user_id, sku, cycle days, usual quantity].
        "reorder": {
            "consumable_categories": [world.category_names[c] for c in world.config.consumable_categories],
            "staples": [
                [u, s, round(float(c), 2), int(q)]
                for u, s, c, q in zip(
                    users.take(pa.array(staples.user)).to_pylist(),
                    skus.take(pa.array(staples.sku)).to_pylist(),
                    staples.cycle,
                    staples.quantity,
                    strict=True,
                )
            ],
        },
    }


def _totals(days: dict[str, dict]) -> dict:
    keys = ("lines", "valid", "late", "anonymous", "bot", "duplicate", "replay", "non_product", "zero_price")
    totals = {key: sum(d["events"][key] for d in days.values()) for key in keys}
    totals["malformed"] = {k: sum(d["events"]["malformed"][k] for d in days.values()) for k in MALFORMED_KINDS}
    totals["by_type"] = {k: sum(d["events"]["by_type"][k] for d in days.values()) for k in EVENT_TYPES}
    return totals


def _remove_previous(out: Path) -> None:
    """Delete the files an earlier run listed in its manifest (and nothing else)."""
    manifest = _read_manifest(out)
    if manifest is None:
        feeds = [out / feed for feed in ("events", "products", "inventory")]
        if any(any(folder.glob("date=*")) for folder in feeds if folder.is_dir()):
            raise FileExistsError(
                f"{out} holds landing data without {MANIFEST_NAME}; refusing to mix sample data into it"
            )
        return
    for day in manifest.get("days", {}).values():
        paths = [*day["events"]["files"], day["products"]["file"]]
        if day.get("inventory"):
            paths.append(day["inventory"]["file"])
        for rel in paths:
            (out / rel).unlink(missing_ok=True)
    (out / MANIFEST_NAME).unlink()


def _read_manifest(out: Path) -> dict | None:
    path = out / MANIFEST_NAME
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def generate(config: GeneratorConfig | None = None, out: Path = Path("var/landing"), *, force: bool = False) -> dict:
    """Write the sample landing zone under ``out`` and return its manifest.

    Skips the work when ``out`` already holds a manifest of the same config (unless ``force``);
    a manifest of another config is replaced together with the files it lists.
    """
    config = config or GeneratorConfig()
    out = Path(out)
    wanted = config.model_dump(mode="json")
    existing = _read_manifest(out)
    same = existing is not None and existing.get("config") == wanted
    if same and existing.get("generator_version") == GENERATOR_VERSION and not force:
        log.info("landing data for this config already in %s (%d days); skipping", out, config.days)
        return existing
    _remove_previous(out)
    started = time.perf_counter()
    world = _build_world(config)
    state = _ShopState(on_hand=world.initial_on_hand.copy(), on_order=np.zeros(world.n_skus, dtype=np.int64))
    ids = _nightly_ids(config)
    days: dict[str, dict] = {}
    for day, catalog in zip(range(config.days), _iter_catalog(world), strict=False):
        landing = config.start_date + timedelta(days=day)
        result = _simulate_day(world, catalog, state, day)
        days[landing.isoformat()] = {
            "events": _write_event_day(world, result, day, out, ids),
            "products": _write_products(world, catalog, landing, out),
            "inventory": _write_inventory(world, result, landing, out) if config.writes_inventory else None,
        }
        log.debug("landed %s: %d event lines", landing, days[landing.isoformat()]["events"]["lines"])
    manifest = {
        "generator_version": GENERATOR_VERSION,
        "config": wanted,
        "start_date": config.start_date.isoformat(),
        "end_date": config.end_date.isoformat(),
        "totals": _totals(days),
        "days": days,
        "planted": _planted(world),
    }
    tmp = out / f"{MANIFEST_NAME}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, out / MANIFEST_NAME)
    log.info(
        "generated %d days (%s..%s), %d event lines, into %s in %.1fs",
        config.days,
        config.start_date,
        config.end_date,
        manifest["totals"]["lines"],
        out,
        time.perf_counter() - started,
    )
    return manifest


def generate_stream_batch(
    config: GeneratorConfig, out: Path, batch_ts: datetime, n_events: int, batch_index: int
) -> Path:
    """Write one micro-batch of clean events from the 5 minutes before ``batch_ts``.

    The file is ``<out>/events/stream/batch-<UTC stamp>-<index>.jsonl`` with the nightly schema; ids
    (``st-``, ``ss-``, ``so-``) never collide with nightly ones. Same arguments, same bytes. A naive
    ``batch_ts`` is taken as UTC.
    """
    if n_events < 0 or batch_index < 0:
        raise ValueError("n_events and batch_index must be >= 0")
    when = batch_ts.replace(tzinfo=UTC) if batch_ts.tzinfo is None else batch_ts.astimezone(UTC)
    t1 = int(when.timestamp() * 1000)
    t0 = t1 - 5 * 60_000
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    world = _build_world(config)
    day = max(0, (when.date() - config.start_date).days)
    catalog = next(c for c in _iter_catalog(world) if c.day == day)
    rng = _rng(config.seed, _Stream.STREAM, int(when.timestamp()), batch_index, n_events)
    wanted_types = (_PURCHASE,) if config.orders_only else tuple(range(len(EVENT_TYPES)))
    per_session = _mean_events_per_session() if not config.orders_only else _P_CART * _P_BUY * (1 + _VIEWS_EXTRA_MEAN)
    n_sessions = max(1, math.ceil(n_events / per_session * 1.3))
    while True:
        rows = _simulate_sessions(world, catalog, rng, n_sessions, (t0, t1), catalog.active, diurnal=False)
        rows = _take(rows, np.flatnonzero(np.isin(rows["etype"], wanted_types)))
        if _size(rows) >= n_events:
            break
        n_sessions *= 2
    rows = _take(rows, np.argsort(rows["ts"], kind="stable")[:n_events])
    rows.update(ev_seq=np.arange(n_events), order_day=np.where(rows["order_seq"] >= 0, 0, -1).astype(np.int32))
    prefix = f"{stamp}-{batch_index:04d}-"
    ids = _IdSpace(events=[f"st-{prefix}"], sessions=[f"ss-{prefix}"], orders=[f"so-{prefix}"])
    path = Path(out) / "events" / "stream" / f"batch-{stamp}-{batch_index:04d}.jsonl"
    tmp = path.with_suffix(".jsonl.tmp")
    sink = _Sink(tmp, compress=False)
    for start in range(0, n_events, _CHUNK_ROWS):
        chunk = {name: col[start : start + _CHUNK_ROWS] for name, col in rows.items()}
        sink.write(_text_bytes(_render_events(world, chunk, ids, "jsonl")))
    sink.close()
    os.replace(tmp, path)
    log.info("wrote stream batch %s (%d events)", path, n_events)
    return path


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    defaults = GeneratorConfig()
    parser = argparse.ArgumentParser(prog="python -m sample_shop.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("var/landing"), help="landing zone root")
    parser.add_argument("--users", type=int, default=defaults.users)
    parser.add_argument("--skus", type=int, default=defaults.skus)
    parser.add_argument("--days", type=int, default=defaults.days)
    parser.add_argument("--events-per-day", type=int, default=defaults.events_per_day)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--start-date", type=date.fromisoformat, default=defaults.start_date)
    parser.add_argument("--malformed-rate", type=float, default=defaults.malformed_rate)
    parser.add_argument(
        "--reorder-share", type=float, default=defaults.reorder_share, help="share of B2B-like re-ordering customers"
    )
    parser.add_argument("--format", choices=("jsonl", "csv"), default=defaults.events_format, dest="events_format")
    parser.add_argument("--orders-only", action="store_true", help="only purchase/return events, no inventory")
    parser.add_argument("--no-inventory", action="store_true", help="do not write the inventory feed")
    parser.add_argument("--force", action="store_true", help="regenerate even if the manifest matches")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = GeneratorConfig(
        users=args.users,
        skus=args.skus,
        days=args.days,
        events_per_day=args.events_per_day,
        seed=args.seed,
        start_date=args.start_date,
        malformed_rate=args.malformed_rate,
        reorder_share=args.reorder_share,
        events_format=args.events_format,
        orders_only=args.orders_only,
        with_inventory=not args.no_inventory,
    )
    generate(config, args.out, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
