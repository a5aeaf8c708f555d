"""Training and scoring frames for the global demand model, built from the daily demand series alone.

Strategy: *direct* multi-horizon forecasting. One row per (SKU, forecast origin, horizon day h); every
feature is known at the origin, and h plus the target day's calendar are features. One model then
serves all 14 days with no recursion, so errors of day 1 do not feed day 2, and a whole horizon is
one batch prediction. We compute our own features from ``units`` instead of the table's lag columns
because those lags are relative to each row's own day, not to the origin of a forecast.

Every level feature is divided by a per-SKU demand *scale* (recent in-stock mean, shrunk towards the
category level), and the model learns the target ``units / scale`` with sample weight ``scale``. As
the pinball loss is positively homogeneous this is the same loss as on raw units, but a fast and a
slow seller now look alike to the trees, which is what lets one global model serve 10k SKUs.

Stockout days are censored: observed sales there are a lower bound, not demand. They are NaN in the
in-stock series every feature is computed from, and never a training target.

SKUs with less than ``min_history_days`` of history get their own features blanked (NaN) and rely on
category-level features and a scale shrunk towards the category level; a share of training rows is
shown with an artificially truncated history so the model learns that regime.

Shops' order-line exports often lack fields, and every one degrades instead of failing: a SKU
without a category reads the catalogue-wide level wherever a category level is used (so a
catalogue without categories falls back to the global pattern); a null or non-positive price is
unknown (no price ratio, and no promotion inferred from it); without an inventory feed
``is_stockout`` is null, read as in stock, so nothing is censored.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property

import numpy as np
import pandas as pd

from models.forecast.calendar import holiday_days, holiday_features
from shopml.config.forecast import DEFAULT_CONFIG, ForecastConfig

log = logging.getLogger(__name__)

UNKNOWN_CATEGORY = "__unknown__"

# Features the model sees; ``category`` is categorical, all others numeric (NaN = unknown).
SKU_FEATURES = (
    "sku_mean_7",
    "sku_mean_28",
    "sku_mean_91",
    "sku_std_28",
    "sku_zero_share_28",
    "sku_days_since_sale",
    "sku_last",
    "sku_same_weekday_last",
    "sku_same_weekday_mean_4",
    "sku_weekday_ratio",
    "sku_trend_7_28",
    "promo_now",
    "promo_days_7",
    "promo_run_days",
    "price_ratio_91",
    "stockout_now",
    "stockout_share_28",
    "demand_class",
    "sku_sale_share_91",
    "sku_mean_size_91",
)
FEATURES = (
    "horizon_day",
    "target_weekday",
    "target_day_of_month",
    "target_month",
    "target_is_holiday",
    "target_days_to_holiday",
    "category",
    "log_scale",
    "history_days",
    "category_level",
    "category_weekday_ratio",
    "category_trend_7_28",
    *SKU_FEATURES,
)
# Syntetos-Boylan classes, in code order: a SKU's code is 2 * (ADI >= cut) + (CV^2 >= cut).
DEMAND_CLASSES = ("smooth", "erratic", "intermittent", "lumpy")
DEMAND_COLUMNS = ("feature_date", "sku", "category", "units", "unit_price", "on_promotion", "is_stockout")


@dataclass(frozen=True)
class DemandPanel:
    """Dense SKU x day matrices of a demand history; column 0 is ``start``, one column per day.

    Missing rows are NaN in ``units``/``price`` and False in the flags. ``in_stock`` is ``units`` with
    stockout days set to NaN: the censored series all model features are computed from.
    """

    skus: np.ndarray
    categories: np.ndarray
    start: date
    units: np.ndarray
    stockout: np.ndarray
    promo: np.ndarray
    price: np.ndarray
    first_day: np.ndarray

    @property
    def n_days(self) -> int:
        return self.units.shape[1]

    def index_of(self, day: date) -> int:
        return (day - self.start).days

    def date_at(self, index: int) -> date:
        return self.start + timedelta(days=int(index))

    @cached_property
    def in_stock(self) -> np.ndarray:
        return np.where(self.stockout, np.nan, self.units)

    @cached_property
    def category_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """(sorted category names, code per SKU)."""
        names, codes = np.unique(self.categories, return_inverse=True)
        return names, codes

    @cached_property
    def prefix_sums(self) -> dict[str, np.ndarray]:
        """Prefix sums over days (one leading zero column) so any window sum is two lookups."""
        observed = ~np.isnan(self.in_stock)
        values = np.nan_to_num(self.in_stock)
        raw = ~np.isnan(self.units)

        def prefix(matrix: np.ndarray) -> np.ndarray:
            out = np.zeros((matrix.shape[0], matrix.shape[1] + 1))
            np.cumsum(matrix, axis=1, out=out[:, 1:])
            return out

        names, codes = self.category_codes
        onehot = np.zeros((len(names), len(codes)))
        onehot[codes, np.arange(len(codes))] = 1.0
        # No category is not a category: those SKUs read the level of the whole catalogue.
        onehot[names == UNKNOWN_CATEGORY] = 1.0
        return {
            "sum": prefix(values),
            "sq": prefix(values**2),
            "count": prefix(observed.astype(float)),
            "zero": prefix((observed & (values == 0)).astype(float)),
            "sale": prefix((values > 0).astype(float)),
            "promo": prefix(self.promo.astype(float)),
            "stockout": prefix(self.stockout.astype(float)),
            "raw_sum": prefix(np.nan_to_num(self.units)),
            "raw_count": prefix(raw.astype(float)),
            "cat_sum": prefix(onehot @ values),
            "cat_count": prefix(onehot @ observed.astype(float)),
        }

    def window_sum(self, name: str, end: int, days: int | np.ndarray) -> np.ndarray:
        """Sum of a prefix-summed matrix over the ``days`` days ending at column ``end`` (inclusive)."""
        table = self.prefix_sums[name]
        first = np.maximum(end + 1 - np.asarray(days), 0)
        if np.ndim(first) == 0:
            return table[:, end + 1] - table[:, int(first)]
        return table[:, end + 1] - table[np.arange(table.shape[0]), first]


def build_panel(demand: pd.DataFrame, end: date, history_days: int | None = None) -> DemandPanel:
    """Pivot long daily demand into a panel covering days up to ``end`` (point in time: later rows dropped).

    Args:
        demand: rows of ``gold.sku_daily_demand`` (at least ``DEMAND_COLUMNS``).
        end: last day of the panel (the run date); days after it are ignored.
        history_days: keep only this many days up to ``end``.
    """
    frame = demand.loc[:, list(DEMAND_COLUMNS)]
    days_since_epoch = pd.to_datetime(frame["feature_date"]).to_numpy().astype("datetime64[D]").astype(np.int64)
    last = np.datetime64(end, "D").astype(np.int64)
    keep = days_since_epoch <= last
    if history_days is not None:
        keep &= days_since_epoch > last - history_days
    frame, days_since_epoch = frame[keep], days_since_epoch[keep]
    if frame.empty:
        raise ValueError(f"no demand rows on or before {end}")
    first = int(days_since_epoch.min())
    start = date(1970, 1, 1) + timedelta(days=first)
    n_days = int(last) - first + 1
    sku_codes, skus = pd.factorize(frame["sku"], sort=True)
    day = days_since_epoch - first
    shape = (len(skus), n_days)

    def dense(values: np.ndarray, fill: float | bool) -> np.ndarray:
        out = np.full(shape, fill, dtype=np.asarray(fill).dtype if isinstance(fill, bool) else float)
        out[sku_codes, day] = values
        return out

    units = frame["units"].to_numpy(dtype=float, na_value=np.nan)
    units = np.where(units < 0, np.nan, units)
    price = pd.to_numeric(frame["unit_price"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    # A zero price is a missing one in order-line exports, and the promotion flag is inferred from the
    # price, so a flag on an unknown price is an artefact (a zero price always looks discounted).
    price = np.where(price > 0, price, np.nan)
    promo = _flag(frame["on_promotion"]) & ~np.isnan(price)
    # The category of a SKU's latest row: a re-categorised product follows its new category.
    named = frame.assign(day=day).dropna(subset=["category"])
    last_category = named.sort_values("day", kind="stable").groupby("sku")["category"].last().astype(str)
    categories = last_category.reindex(skus).fillna(UNKNOWN_CATEGORY).to_numpy(dtype=object)
    first_day = np.full(len(skus), n_days, dtype=np.int64)
    np.minimum.at(first_day, sku_codes, day)
    return DemandPanel(
        skus=np.asarray(skus, dtype=object),
        categories=categories,
        start=start,
        units=dense(units, np.nan),
        stockout=dense(_flag(frame["is_stockout"]), False),
        promo=dense(promo, False),
        price=dense(price, np.nan),
        first_day=first_day,
    )


def _flag(values: pd.Series) -> np.ndarray:
    """A nullable boolean column as a numpy mask; null (no inventory feed, no price) is False."""
    return values.astype("boolean").fillna(False).to_numpy(dtype=bool)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = numerator / denominator
    return np.where(np.isfinite(out), out, np.nan)


def _category_level(panel: DemandPanel, end: int, days: int) -> np.ndarray:
    """Per-category mean units per in-stock SKU-day over a window; global mean where a category has none.

    The unknown category's level is the global one (see ``prefix_sums``).
    """
    level = _ratio(panel.window_sum("cat_sum", end, days), panel.window_sum("cat_count", end, days))
    overall = _ratio(panel.window_sum("sum", end, days).sum(), panel.window_sum("count", end, days).sum())
    return np.where(np.isnan(level), np.nan_to_num(overall), level)


def _demand_scale(
    panel: DemandPanel, end: int, history: np.ndarray, category_level: np.ndarray, config: ForecastConfig
) -> np.ndarray:
    """Recent in-stock mean over at most ``history`` days, shrunk towards the category level by ``prior_days``."""
    days = np.minimum(28, history)
    total, count = panel.window_sum("sum", end, days), panel.window_sum("count", end, days)
    sparse = count < 7
    if sparse.any():
        long_days = np.minimum(91, history)
        total = np.where(sparse, panel.window_sum("sum", end, long_days), total)
        count = np.where(sparse, panel.window_sum("count", end, long_days), count)
    blended = _ratio(total + config.prior_days * category_level, count + config.prior_days)
    return np.maximum(np.where(np.isnan(blended), category_level, blended), config.min_scale)


def classify_demand(adi: np.ndarray, cv2: np.ndarray, cutoffs: tuple[float, float] = (1.32, 0.49)) -> np.ndarray:
    """Syntetos-Boylan class codes (index into ``DEMAND_CLASSES``) from ADI and CV^2 of non-zero sizes.

    Regular demand (short intervals) is smooth or erratic by size variability, sparse demand
    intermittent or lumpy: the split tells which SKUs a median forecast will under-serve.
    """
    return 2 * (np.asarray(adi) >= cutoffs[0]).astype(np.int64) + (np.asarray(cv2) >= cutoffs[1]).astype(np.int64)


def demand_class_codes(panel: DemandPanel, end: int, days: int, cutoffs: tuple[float, float]) -> np.ndarray:
    """Each SKU's demand class over the ``days`` in-stock days up to ``end``.

    ADI is observed days per day with a sale (the mean interval between non-zero demands); a SKU
    with no sale has an infinite ADI and a CV^2 of 0 (intermittent).
    """
    sales = panel.window_sum("sale", end, days)
    adi = np.where(sales > 0, _ratio(panel.window_sum("count", end, days), sales), np.inf)
    size = _ratio(panel.window_sum("sum", end, days), sales)
    variance = np.maximum(_ratio(panel.window_sum("sq", end, days), sales) - size**2, 0.0)
    cv2 = np.nan_to_num(_ratio(variance, size**2))
    return classify_demand(adi, cv2, cutoffs)


def _origin_block(panel: DemandPanel, end: int, history: np.ndarray, config: ForecastConfig) -> dict[str, np.ndarray]:
    """Features of every SKU for one origin column, shape (n_skus, horizon); SKU-level ones blanked for short history."""
    horizon = config.horizon
    history = np.maximum(history, 0)
    _, codes = panel.category_codes
    cat_level = _category_level(panel, end, 28)
    sku_cat_level = cat_level[codes]
    scale = _demand_scale(panel, end, history, sku_cat_level, config)

    def mean(days: int) -> np.ndarray:
        return _ratio(panel.window_sum("sum", end, days), panel.window_sum("count", end, days))

    mean_7, mean_28, mean_91 = mean(7), mean(28), mean(91)
    sales_91 = panel.window_sum("sale", end, 91)
    count_28 = panel.window_sum("count", end, 28)
    var_28 = _ratio(panel.window_sum("sq", end, 28), count_28) - mean_28**2
    sale_prefix = panel.prefix_sums["sale"]
    # Index of the last day with a sale: the last column where the prefix count of sale days increased.
    sold_by = sale_prefix[:, 1 : end + 2]
    last_sale = np.where(sold_by[:, -1] > 0, np.argmax(sold_by == sold_by[:, -1:], axis=1), -1)
    days_since_sale = np.where(last_sale >= 0, end - last_sale, np.nan)
    promo_now = panel.promo[:, end].astype(float)
    promo_run = np.zeros(len(codes))
    running = panel.promo[:, end].copy()
    for back in range(min(end + 1, 28)):
        running &= panel.promo[:, end - back]
        promo_run += running
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: SKUs without a price
        price_median = np.nanmedian(panel.price[:, max(end - 90, 0) : end + 1], axis=1)
    sku: dict[str, np.ndarray] = {
        "sku_mean_7": _ratio(mean_7, scale),
        "sku_mean_28": _ratio(mean_28, scale),
        "sku_mean_91": _ratio(mean_91, scale),
        "sku_std_28": _ratio(np.sqrt(np.maximum(var_28, 0)), scale),
        "sku_zero_share_28": _ratio(panel.window_sum("zero", end, 28), count_28),
        "sku_days_since_sale": np.minimum(days_since_sale, 91),
        "sku_last": _ratio(panel.in_stock[:, end], scale),
        "sku_trend_7_28": _ratio(mean_7, mean_28),
        "promo_now": promo_now,
        "promo_days_7": panel.window_sum("promo", end, 7),
        "promo_run_days": promo_run,
        "price_ratio_91": _ratio(panel.price[:, end], price_median),
        "stockout_now": panel.stockout[:, end].astype(float),
        "stockout_share_28": panel.window_sum("stockout", end, 28) / np.minimum(28, end + 1),
        "demand_class": demand_class_codes(panel, end, config.demand_class_days, config.demand_class_cutoffs),
        # Croston's two parts without its recursion: how often the SKU sells, and how much when it does.
        "sku_sale_share_91": _ratio(sales_91, panel.window_sum("count", end, 91)),
        "sku_mean_size_91": _ratio(_ratio(panel.window_sum("sum", end, 91), sales_91), scale),
    }
    short = history < config.min_history_days
    block: dict[str, np.ndarray] = {}
    cat_trend = _ratio(_category_level(panel, end, 7), cat_level)[codes]
    cat_long = _category_level(panel, end, 56)
    origin_date = panel.date_at(end)
    targets = np.datetime64(origin_date, "D").astype(np.int64) + np.arange(1, horizon + 1)
    last_year = (origin_date + timedelta(days=horizon + config.holiday_horizon_days)).year
    holidays = holiday_days(config.holiday_calendar, origin_date.year, last_year)
    is_holiday, days_to_holiday = holiday_features(targets, holidays, config.holiday_horizon_days)
    for name in (*FEATURES, "scale"):
        block[name] = np.empty((len(codes), horizon))
    for step in range(1, horizon + 1):
        col = step - 1
        target = origin_date + timedelta(days=step)
        # Most recent same weekday on or before the origin, then the weeks before it.
        same = end + step - 7 * int(np.ceil(step / 7))
        weeks = np.array([same - 7 * k for k in range(8) if same - 7 * k >= 0], dtype=np.int64)
        values = panel.in_stock[:, weeks[:4]]
        same_mean = _ratio(np.nansum(values, axis=1), (~np.isnan(values)).sum(axis=1))
        prefix = panel.prefix_sums
        cat_same = _ratio(
            (prefix["cat_sum"][:, weeks + 1] - prefix["cat_sum"][:, weeks]).sum(axis=1),
            (prefix["cat_count"][:, weeks + 1] - prefix["cat_count"][:, weeks]).sum(axis=1),
        )
        block["horizon_day"][:, col] = step
        block["target_weekday"][:, col] = target.weekday()
        block["target_day_of_month"][:, col] = target.day
        block["target_month"][:, col] = target.month
        block["target_is_holiday"][:, col] = is_holiday[col]
        block["target_days_to_holiday"][:, col] = days_to_holiday[col]
        block["category"][:, col] = codes
        block["scale"][:, col] = scale
        block["log_scale"][:, col] = np.log(scale)
        block["history_days"][:, col] = np.minimum(history, 365)
        block["category_level"][:, col] = _ratio(sku_cat_level, scale)
        block["category_weekday_ratio"][:, col] = _ratio(cat_same, cat_long)[codes]
        block["category_trend_7_28"][:, col] = cat_trend
        for name, feature in sku.items():
            block[name][:, col] = feature
        block["sku_same_weekday_last"][:, col] = _ratio(panel.in_stock[:, same], scale) if same >= 0 else np.nan
        block["sku_same_weekday_mean_4"][:, col] = _ratio(same_mean, scale)
        block["sku_weekday_ratio"][:, col] = _ratio(same_mean, mean_28)
    for name in SKU_FEATURES:
        block[name][short, :] = np.nan
    return block


def _block_frame(
    panel: DemandPanel, end: int, block: dict[str, np.ndarray], rows: np.ndarray, cols: np.ndarray
) -> pd.DataFrame:
    names, _ = panel.category_codes
    frame = pd.DataFrame({name: block[name][rows, cols] for name in (*FEATURES, "scale")})
    frame["category"] = names[frame["category"].to_numpy(dtype=np.int64)]
    frame.insert(0, "sku", panel.skus[rows])
    origin = np.datetime64(panel.date_at(end), "D")
    frame.insert(1, "origin_date", np.full(len(rows), origin))
    frame.insert(2, "forecast_date", origin + (cols + 1).astype("timedelta64[D]"))
    return frame


def build_training_frame(
    panel: DemandPanel, cutoff: date, config: ForecastConfig = DEFAULT_CONFIG, seed: int = 0
) -> pd.DataFrame:
    """Rows (SKU, origin, horizon day) whose target day is on or before ``cutoff``, with ``units`` as target.

    Origins step back from the day before ``cutoff`` by ``train_origin_step_days`` within
    ``train_window_days``; censored (stockout or missing) target days are dropped, and rows are
    sampled down to ``max_train_rows``.
    """
    rng = np.random.default_rng(seed)
    end_cutoff = panel.index_of(cutoff)
    if end_cutoff >= panel.n_days:
        raise ValueError(f"cutoff {cutoff} is after the panel's last day {panel.date_at(panel.n_days - 1)}")
    origins = [
        o
        for o in range(end_cutoff - 1, end_cutoff - 1 - config.train_window_days, -config.train_origin_step_days)
        if o >= 0
    ]
    candidate_rows = sum(int((panel.first_day <= o).sum()) for o in origins) * config.horizon
    keep_share = min(1.0, config.max_train_rows / max(candidate_rows, 1))
    frames = []
    for end in origins:
        history = end - panel.first_day + 1
        truncate = (history >= config.min_history_days) & (rng.random(len(history)) < config.short_history_fraction)
        history = np.where(
            truncate, rng.integers(1, max(config.min_history_days, 2), size=len(history)), history
        ).astype(np.int64)
        block = _origin_block(panel, end, history, config)
        steps = np.arange(1, config.horizon + 1)
        target_cols = end + steps
        target = np.full((len(history), config.horizon), np.nan)
        valid_cols = target_cols <= end_cutoff
        target[:, valid_cols] = panel.in_stock[:, target_cols[valid_cols]]
        usable = (history[:, None] >= 1) & ~np.isnan(target)
        if keep_share < 1.0:
            usable &= rng.random(usable.shape) < keep_share
        rows, cols = np.nonzero(usable)
        if len(rows) == 0:
            continue
        frame = _block_frame(panel, end, block, rows, cols)
        frame["units"] = target[rows, cols]
        frames.append(frame)
    if not frames:
        raise ValueError(f"no training rows: not enough uncensored demand history before {cutoff}")
    out = pd.concat(frames, ignore_index=True)
    log.info("training frame: %d rows from %d origins up to %s", len(out), len(origins), cutoff)
    return out


def build_scoring_frame(
    panel: DemandPanel, origin: date, config: ForecastConfig = DEFAULT_CONFIG, skus: np.ndarray | None = None
) -> pd.DataFrame:
    """One row per (SKU, horizon day) for forecasts made at ``origin`` (the run date), features as of it.

    Args:
        skus: SKUs to score (default: every SKU with at least one day of history by ``origin``).
    """
    end = panel.index_of(origin)
    if not 0 <= end < panel.n_days:
        raise ValueError(f"origin {origin} is outside the panel")
    history = end - panel.first_day + 1
    wanted = history >= 1 if skus is None else np.isin(panel.skus, skus)
    unknown = set() if skus is None else set(skus) - set(panel.skus[history >= 1])
    if unknown:
        raise ValueError(f"{len(unknown)} SKU(s) to score have no history by {origin}, e.g. {sorted(unknown)[:5]}")
    block = _origin_block(panel, end, history, config)
    rows = np.repeat(np.nonzero(wanted)[0], config.horizon)
    cols = np.tile(np.arange(config.horizon), int(wanted.sum()))
    return _block_frame(panel, end, block, rows, cols)
