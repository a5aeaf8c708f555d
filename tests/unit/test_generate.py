"""The sample-data generator: determinism, an exact manifest, and structure models can learn."""

from __future__ import annotations

import csv
import gzip
import json
import logging
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from sample_shop.generate import (
    EVENT_FIELDS,
    EVENT_TYPES,
    MALFORMED_KINDS,
    NON_PRODUCT_SKUS,
    REQUIRED_EVENT_FIELDS,
    GeneratorConfig,
    _limit_to_stock,
    _rows,
    generate,
    generate_stream_batch,
    main,
)

# Small parts so days span several files, some of them gzip-compressed.
TINY = GeneratorConfig(
    users=150, skus=60, days=12, events_per_day=2500, seed=7, bot_sessions_per_day=2, rows_per_file=2000
)


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("landing")
    return out, generate(TINY, out)


@pytest.fixture(scope="module")
def csv_landing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("landing-csv")
    config = TINY.model_copy(update={"days": 5, "events_format": "csv", "malformed_rate": 0.05, "rows_per_file": 1000})
    return out, generate(config, out)


@pytest.fixture(scope="module")
def events(landing: tuple[Path, dict]) -> list[dict]:
    return _valid_events(landing[0])


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8")


def _read_lines(out: Path, feed: str = "events") -> list[tuple[str, str, str]]:
    """(landing date, file, raw line) for every data line of a feed; CSV headers are skipped."""
    lines = []
    for path in sorted((out / feed).glob("date=*/part-*")):
        with _open_text(path) as handle:
            text = handle.read().splitlines()
        if path.suffix == ".csv":
            assert text[0] == ",".join(EVENT_FIELDS)
            text = text[1:]
        lines += [(path.parent.name.removeprefix("date="), path.relative_to(out).as_posix(), t) for t in text]
    return lines


def _parse(raw: str, is_csv: bool) -> dict | None:
    """A line as a dict of raw values (CSV empty cells dropped), or None when it cannot be split."""
    if not is_csv:
        try:
            return json.loads(raw)
        except ValueError:
            return None
    cells = next(csv.reader([raw]))
    if len(cells) != len(EVENT_FIELDS):
        return None
    return {k: v for k, v in zip(EVENT_FIELDS, cells, strict=True) if v != ""}


def _utc(ts: str) -> datetime | None:
    try:
        return datetime.fromisoformat(ts).astimezone(UTC)
    except (TypeError, ValueError):
        return None


def _catalogue(out: Path) -> set[str]:
    return {json.loads(raw)["sku"] for _, _, raw in _read_lines(out, "products")}


def _classify(out: Path, is_csv: bool = False) -> dict[str, Counter]:
    """Re-derive every manifest count from the files alone, the way a pipeline test would."""
    catalogue = _catalogue(out)
    counts: dict[str, Counter] = defaultdict(Counter)
    seen_ids: set[str] = set()
    rows_by_day: dict[str, list[dict]] = defaultdict(list)
    by_day: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for landing_date, file, raw in _read_lines(out):
        by_day[landing_date].append((file, raw))
    for landing_date, day_lines in sorted(by_day.items()):
        per_file: dict[str, Counter] = defaultdict(Counter)
        day_ids: set[str] = set()
        c = counts[landing_date]
        for file, raw in day_lines:
            c["lines"] += 1
            per_file[file][raw] += 1
            if per_file[file][raw] > 1:
                c["duplicate"] += 1
                continue
            row = _parse(raw, is_csv)
            if row is None:
                c["truncated"] += 1
            elif any(field not in row for field in REQUIRED_EVENT_FIELDS):
                c["missing_field"] += 1
            elif row["quantity"] in ("two",) or row["unit_price"] in ("abc",) or _utc(row["event_ts"]) is None:
                c["wrong_type"] += 1
            elif float(row["unit_price"]) < 0:
                c["negative_price"] += 1
            elif row["event_type"] not in EVENT_TYPES:
                c["unknown_event_type"] += 1
            elif row["sku"] in NON_PRODUCT_SKUS:
                c["non_product"] += 1
            elif row["sku"] not in catalogue:
                c["unknown_sku"] += 1
            elif float(row["unit_price"]) == 0:
                c["zero_price"] += 1
            elif row["event_id"] in seen_ids:
                c["replay"] += 1
            else:
                c["id_clash"] += row["event_id"] in day_ids
                day_ids.add(row["event_id"])
                rows_by_day[landing_date].append(row)
        seen_ids |= day_ids
        sessions = Counter(row["session_id"] for row in rows_by_day[landing_date])
        for row in rows_by_day[landing_date]:
            if sessions[row["session_id"]] > 200:
                c["bot"] += 1
                continue
            c["valid"] += 1
            c["anonymous"] += row.get("user_id") is None
            late = (date.fromisoformat(landing_date) - _utc(row["event_ts"]).date()).days
            if late > 0:
                c["late"] += 1
                c[f"late_{late}"] += 1
            c[f"type_{row['event_type']}"] += 1
    return counts


def _assert_manifest_matches(manifest: dict, derived: dict[str, Counter]) -> None:
    assert sorted(manifest["days"]) == sorted(derived)
    for day, entry in manifest["days"].items():
        ev, got = entry["events"], derived[day]
        assert got["id_clash"] == 0, day
        for key in ("lines", "valid", "late", "anonymous", "bot", "duplicate", "replay", "non_product", "zero_price"):
            assert ev[key] == got[key], (day, key)
        for kind in MALFORMED_KINDS:
            assert ev["malformed"][kind] == got[kind], (day, kind)
        for days_late, n in ev["late_by_days"].items():
            assert got[f"late_{days_late}"] == n, (day, days_late)
        for event_type, n in ev["by_type"].items():
            assert got[f"type_{event_type}"] == n, (day, event_type)
        planted = ev["valid"] + ev["bot"] + ev["duplicate"] + ev["replay"] + ev["non_product"] + ev["zero_price"]
        assert ev["lines"] == planted + ev["malformed_total"] == sum(ev["files"].values())


def test_layout_and_manifest_match_the_files_exactly(landing: tuple[Path, dict]) -> None:
    out, manifest = landing
    days = [(TINY.start_date + timedelta(days=d)).isoformat() for d in range(TINY.days)]
    for day in days:
        assert (out / "products" / f"date={day}" / "part-00000.jsonl").is_file()
        assert (out / "inventory" / f"date={day}" / "part-00000.jsonl").is_file()
        assert list((out / "events" / f"date={day}").glob("part-00000.jsonl*"))
    assert any(p.suffix == ".gz" for p in (out / "events").glob("date=*/*"))
    assert any(len(d["events"]["files"]) > 1 for d in manifest["days"].values())
    _assert_manifest_matches(manifest, _classify(out))
    totals = manifest["totals"]
    # Every kind of mess is really planted in a 12-day sample.
    for key in ("late", "anonymous", "bot", "duplicate", "replay", "non_product", "zero_price"):
        assert totals[key] > 0, key
    assert all(totals["malformed"][kind] > 0 for kind in MALFORMED_KINDS)
    very_late = sum(n for d in manifest["days"].values() for k, n in d["events"]["late_by_days"].items() if int(k) > 7)
    assert very_late > 0
    assert 0.015 < totals["late"] / totals["valid"] < 0.045


def test_csv_events_have_a_header_and_the_same_exact_manifest(csv_landing: tuple[Path, dict]) -> None:
    out, manifest = csv_landing
    files = sorted((out / "events").glob("date=*/*"))
    assert files and all(p.name.endswith(".csv") for p in files)
    with files[0].open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == EVENT_FIELDS
        first = next(reader)
    assert first["event_id"].startswith("ev-") and first["currency"] == "EUR"
    _assert_manifest_matches(manifest, _classify(out, is_csv=True))


def test_valid_lines_follow_the_schema(events: list[dict]) -> None:
    checked = Counter()
    for row in events:
        assert set(row) <= set(EVENT_FIELDS)
        assert row["event_id"].startswith("ev-") and row["session_id"].startswith("s-")
        assert row["user_id"] is None or (row["user_id"].startswith("U-") and len(row["user_id"]) == 8)
        assert row["sku"].startswith("SKU-") and len(row["sku"]) == 10
        assert row["quantity"] > 0
        assert round(row["unit_price"], 2) == row["unit_price"]
        assert row["currency"] == "EUR" and row["channel"] in ("web", "app") and row["user_agent"]
        ts = row["event_ts"]
        assert ts[10] == "T" and ts[19] == "." and (ts.endswith("Z") or ts[-6] in "+-"), ts
        if row["event_type"] in ("purchase", "return"):
            assert row["order_id"].startswith("o-")
        else:
            assert "order_id" not in row
        checked[row["event_type"]] += 1
    assert set(checked) == set(EVENT_TYPES)


def test_products_and_inventory_snapshots(landing: tuple[Path, dict]) -> None:
    out, manifest = landing
    products = [json.loads(raw) for _, _, raw in _read_lines(out, "products")]
    assert len(products) == TINY.skus * TINY.days
    assert set(products[0]) == {"sku", "title", "category", "brand", "unit_price", "active"}
    assert any(p["category"] is None for p in products) and any(p["brand"] is None for p in products)
    prices = defaultdict(set)
    for p in products:
        prices[p["sku"]].add(p["unit_price"])
    assert any(len(v) > 1 for v in prices.values()), "some list prices change"
    assert sum(len(d["products"]["on_promotion"]) for d in manifest["days"].values()) > 0
    inventory = [json.loads(raw) for _, _, raw in _read_lines(out, "inventory")]
    assert set(inventory[0]) == {"sku", "on_hand", "on_order", "lead_time_days", "snapshot_ts"}
    assert inventory[0]["snapshot_ts"] == f"{TINY.start_date.isoformat()}T23:59:59.000Z"
    assert all(r["on_hand"] >= 0 and r["on_order"] >= 0 and r["lead_time_days"] > 0 for r in inventory)
    assert any(r["on_hand"] == 0 for r in inventory), "some SKUs run out"


def _valid_events(out: Path) -> list[dict]:
    """Unique, well-formed catalogue events from non-bot sessions, as a cleaning stage would keep."""
    catalogue = _catalogue(out)
    rows, seen = [], set()
    for _, _, raw in _read_lines(out):
        row = _parse(raw, is_csv=False)
        if row is None or set(REQUIRED_EVENT_FIELDS) - set(row) or row["event_id"] in seen:
            continue
        if row["event_type"] not in EVENT_TYPES or row["sku"] not in catalogue:
            continue
        if not isinstance(row["quantity"], int) or not isinstance(row["unit_price"], int | float):
            continue
        if row["unit_price"] <= 0 or _utc(row["event_ts"]) is None:
            continue
        seen.add(row["event_id"])
        rows.append(row)
    sessions = Counter(r["session_id"] for r in rows)
    return [r for r in rows if sessions[r["session_id"]] <= 200]


def test_inventory_is_consistent_with_sales(landing: tuple[Path, dict], events: list[dict]) -> None:
    out, _ = landing
    net = defaultdict(int)  # units out of stock per (event date, sku): sold minus returned
    for row in events:
        if row["event_type"] in ("purchase", "return"):
            sign = 1 if row["event_type"] == "purchase" else -1
            net[(_utc(row["event_ts"]).date().isoformat(), row["sku"])] += sign * row["quantity"]
    snapshot = {(d, json.loads(raw)["sku"]): json.loads(raw) for d, _, raw in _read_lines(out, "inventory")}
    reorders = defaultdict(set)
    for (day, sku), now in snapshot.items():
        before = snapshot.get(((date.fromisoformat(day) - timedelta(days=1)).isoformat(), sku))
        if before is None:
            continue
        # Stock position moves only by sales, restocked returns and new supplier orders (a fixed size per SKU).
        ordered = now["on_hand"] + now["on_order"] - before["on_hand"] - before["on_order"] + net[(day, sku)]
        assert ordered >= 0, (day, sku)
        if ordered:
            reorders[sku].add(ordered)
    assert reorders and all(len(sizes) == 1 for sizes in reorders.values())


def test_bots_are_busy_sessions_some_without_a_bot_agent(landing: tuple[Path, dict]) -> None:
    out, manifest = landing
    agents = defaultdict(set)
    sizes = Counter()
    for landing_date, _, raw in _read_lines(out):
        row = _parse(raw, is_csv=False)
        if row and "session_id" in row:
            sizes[(landing_date, row["session_id"])] += 1
            agents[(landing_date, row["session_id"])].add(row["user_agent"])
    busy = [key for key, n in sizes.items() if n > 200]
    assert len(busy) == sum(d["events"]["bot_sessions"] for d in manifest["days"].values())
    announced = [any("bot" in a.lower() or "crawler" in a.lower() for a in agents[key]) for key in busy]
    assert any(announced) and not all(announced)


def test_promotions_sell_below_list_price(landing: tuple[Path, dict], events: list[dict]) -> None:
    out, manifest = landing
    list_price = {
        (d, json.loads(raw)["sku"]): json.loads(raw)["unit_price"] for d, _, raw in _read_lines(out, "products")
    }
    promo = {(d, sku) for d, entry in manifest["days"].items() for sku in entry["products"]["on_promotion"]}
    ratios = {True: [], False: []}
    for row in events:
        if row["event_type"] != "view":
            continue
        key = (_utc(row["event_ts"]).date().isoformat(), row["sku"])
        ratios[key in promo].append(row["unit_price"] / list_price[key])
    assert ratios[True] and min(ratios[True]) >= 0.69 and max(ratios[True]) <= 0.81
    assert set(ratios[False]) == {1.0}


def test_stock_limit_serves_purchases_first_come_first_served() -> None:
    rows = _rows(
        5,
        etype=np.array([3, 3, 0, 3, 3]),
        sku=np.array([0, 0, 0, 0, 1]),
        qty=np.array([2, 3, 1, 1, 1]),
        ts=np.array([10, 20, 25, 30, 5]),
    )
    keep = _limit_to_stock(rows, on_hand=np.array([4, 0]))
    # SKU 0 has 4 units: 2 sold, then 2 of 3, then nothing; SKU 1 is out of stock; the view stays.
    assert keep.tolist() == [0, 1, 2]
    assert rows["qty"][keep].tolist() == [2, 2, 1]


def _purchases(out: Path) -> list[dict]:
    return [r for r in _valid_events(out) if r["event_type"] == "purchase"]


def test_users_buy_in_their_taste_groups_categories(landing: tuple[Path, dict], events: list[dict]) -> None:
    out, manifest = landing
    category = {json.loads(raw)["sku"]: json.loads(raw)["category"] for _, _, raw in _read_lines(out, "products")}
    groups, user_group = manifest["planted"]["taste_groups"], manifest["planted"]["user_group"]
    in_core = [
        category[r["sku"]] in groups[str(user_group[int(r["user_id"][2:]) - 1])]
        for r in [r for r in events if r["event_type"] == "purchase"]
        if r["user_id"] and category[r["sku"]]
    ]
    chance = len(next(iter(groups.values()))) / len(manifest["planted"]["categories"])
    assert len(in_core) > 300
    assert np.mean(in_core) > 2.5 * chance


def test_weekends_sell_more(tmp_path: Path) -> None:
    config = TINY.model_copy(update={"days": 14, "events_per_day": 4000, "late_rate": 0.0, "very_late_rate": 0.0})
    generate(config, tmp_path)
    units = Counter()
    for row in _purchases(tmp_path):
        units[_utc(row["event_ts"]).date()] += row["quantity"]
    weekend = np.mean([n for d, n in units.items() if d.weekday() >= 5])
    weekday = np.mean([n for d, n in units.items() if d.weekday() < 5])
    assert weekend / weekday > 1.2


def test_orders_share_ids_and_returns_follow_purchases(events: list[dict]) -> None:
    bought = {(r["order_id"], r["sku"]): r for r in events if r["event_type"] == "purchase"}
    lines_per_order = Counter(order for order, _ in bought)
    assert max(lines_per_order.values()) > 1
    returns = [r for r in events if r["event_type"] == "return"]
    assert returns
    for r in returns:
        purchase = bought[(r["order_id"], r["sku"])]
        assert 0 < r["quantity"] <= purchase["quantity"] and r["user_id"] == purchase["user_id"]
        assert 1 <= (_utc(r["event_ts"]).date() - _utc(purchase["event_ts"]).date()).days <= 14
    carted = {(r["session_id"], r["sku"]) for r in events if r["event_type"] == "add_to_cart"}
    assert all((r["session_id"], r["sku"]) in carted for r in bought.values())


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    config = TINY.model_copy(update={"days": 4, "gzip_every": 2})
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(config, first)
    generate(config, second)
    generate(config.model_copy(update={"seed": 8}), other)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert any(p.suffix == ".gz" for p in files)
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel
    day = "events/date=2026-01-01/part-00000.jsonl"
    assert (first / day).read_bytes() != (other / day).read_bytes()


def test_orders_only_writes_order_lines_and_no_inventory(tmp_path: Path) -> None:
    config = TINY.model_copy(update={"days": 4, "orders_only": True})
    manifest = generate(config, tmp_path)
    assert not (tmp_path / "inventory").exists()
    assert all(d["inventory"] is None for d in manifest["days"].values())
    types = Counter(r["event_type"] for r in _valid_events(tmp_path))
    assert types["purchase"] > 0 and set(types) <= {"purchase", "return"}
    assert manifest["totals"]["bot"] == 0
    _assert_manifest_matches(manifest, _classify(tmp_path))


def test_stream_batches_are_deterministic_and_never_collide(tmp_path: Path, landing: tuple[Path, dict]) -> None:
    out, _ = landing
    when = datetime(2026, 1, 5, 13, 5, tzinfo=UTC)
    path = generate_stream_batch(TINY, tmp_path / "a", when, 300, 2)
    again = generate_stream_batch(TINY, tmp_path / "b", when, 300, 2)
    other = generate_stream_batch(TINY, tmp_path / "a", when, 300, 3)
    assert path.relative_to(tmp_path / "a").as_posix() == "events/stream/batch-20260105T130500Z-0002.jsonl"
    assert path.read_bytes() == again.read_bytes() != other.read_bytes()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 300
    assert all(set(REQUIRED_EVENT_FIELDS) <= set(r) and r["event_type"] in EVENT_TYPES for r in rows)
    assert all(when - timedelta(minutes=5) <= _utc(r["event_ts"]) < when for r in rows)
    stream_ids = {r["event_id"] for r in rows} | {json.loads(x)["event_id"] for x in other.read_text().splitlines()}
    assert len(stream_ids) == 600
    nightly = {json.loads(raw).get("event_id") for _, _, raw in _read_lines(out) if raw.endswith("}")}
    assert not stream_ids & nightly


def test_cli_rerun_skips_when_manifest_matches(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    argv = ["--out", str(tmp_path), "--users", "50", "--skus", "20", "--days", "2", "--events-per-day", "300"]
    assert main(argv) == 0
    manifest = tmp_path / "_manifest.json"
    stamp = manifest.stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="sample_shop.generate"):
        assert main(argv) == 0
    assert "skipping" in caplog.text
    assert manifest.stat().st_mtime_ns == stamp
    # A different config replaces the earlier run's files rather than mixing with them.
    assert main([*argv, "--days", "1"]) == 0
    assert not list((tmp_path / "events").glob("date=2026-01-02/*"))
    assert json.loads(manifest.read_text())["config"]["days"] == 1


def test_reordering_customers_buy_their_staples_again_on_cycles(tmp_path: Path) -> None:
    config = TINY.model_copy(update={"days": 42, "events_per_day": 1000, "reorder_share": 0.3})
    manifest = generate(config, tmp_path)
    _assert_manifest_matches(manifest, _classify(tmp_path))
    reorder = manifest["planted"]["reorder"]
    assert reorder["consumable_categories"] == ["grocery", "pets", "office"]
    staples = reorder["staples"]
    assert 0.2 * config.users < len({user for user, *_ in staples}) < 0.4 * config.users
    category = {json.loads(raw)["sku"]: json.loads(raw)["category"] for _, _, raw in _read_lines(tmp_path, "products")}
    assert {category[sku] for _, sku, _, _ in staples} <= {*reorder["consumable_categories"], None}
    assert all(7 <= cycle <= 28 for _, _, cycle, _ in staples)
    # A re-order is a quick session: every SKU viewed is bought (browsing sessions view five or so, buy few).
    events = _valid_events(tmp_path)
    viewed, bought = defaultdict(set), defaultdict(set)
    for row in events:
        if row["event_type"] in ("view", "purchase"):
            (viewed if row["event_type"] == "view" else bought)[row["session_id"]].add(row["sku"])
    orders = defaultdict(list)
    for row in events:
        if row["event_type"] == "purchase" and bought[row["session_id"]] == viewed[row["session_id"]]:
            orders[(row["user_id"], row["sku"])].append((_utc(row["event_ts"]).timestamp() / 86_400, row["quantity"]))
    gaps, quantities = [], []
    for user, sku, cycle, _ in staples:
        placed = sorted(orders[(user, sku)])
        gaps += [(b[0] - a[0]) / cycle for a, b in pairwise(placed)]
        quantities.append(len({qty for _, qty in placed}))
    # Measured: 197 gaps, median 0.99 of the cycle, 98 % within 0.7-1.4 (the rest: an order skipped for stock).
    assert len(gaps) > 150
    assert 0.95 < np.median(gaps) < 1.05
    assert np.mean((np.array(gaps) > 0.7) & (np.array(gaps) < 1.4)) > 0.9
    assert np.mean(np.array(quantities) > 1) > 0.5


def test_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="extra"):
        GeneratorConfig(userz=10)
    with pytest.raises(ValueError, match="categories"):
        GeneratorConfig(skus=5, categories=12)
    with pytest.raises(ValueError, match="reorder_cycle_days"):
        GeneratorConfig(reorder_cycle_days=(28, 7))
