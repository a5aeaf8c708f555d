"""The 5-minute refresh on a nightly-published tiny shop: storefront reads through the real API and store."""

from __future__ import annotations

import gzip
import json
import socket
import sqlite3
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from fastapi.testclient import TestClient

from jobs.incremental.merge import merge_batch
from jobs.incremental.overlay import LIST_DATASETS, current_versions, publish_refresh
from jobs.incremental.refresh import build_refresh, micro_batch_settings, run
from jobs.incremental.rerank import nightly_holders, served_lists
from jobs.landing import CSV_SUFFIXES, JSON_SUFFIXES
from models.recommend import pipeline as recommend
from models.recommend.data import FEATURES
from models.registry import ModelRegistry
from serving.api import create_app
from serving.datasets import USER_LISTS
from serving.publish import publish_dataset
from serving.store import StoreUnavailableError, VersionInfo
from shopml import airflow_env
from shopml.config.incremental import IncrementalConfig
from shopml.config.serving import ServingConfig
from shopml.lake import Lake
from shopml.notify import alerts_path
from shopml.settings import load_settings
from shopml.watermark import pending_files, processed_files, read_watermark
from tests.integration.incremental.serving_shop import RECOMMEND_CONFIG, event, open_shop, write_batch
from tests.lineage import undeclared
from tests.shop import run_foundation

STREAM = "events"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _items(api, user: str, served_list: str = "all") -> list[str]:
    response = api.get(f"/v1/recommendations/{user}", params={"list": served_list})
    assert response.status_code == 200, response.text
    return [item["sku"] for item in response.json()["items"]]


def _stock(api, sku: str) -> dict:
    return api.get(f"/v1/inventory/{sku}").json()["plan"]


def _nightly_lists(shop, served_list: str | None = "all") -> pd.DataFrame:
    """The nightly rows of one list (None: of every list)."""
    lists = shop.lake.read_pandas("gold.recommendations")
    lists = lists[lists["scored_date"] == shop.scored_date]
    return lists if served_list is None else lists[lists["list"] == served_list]


def _personal_list_head(shop) -> tuple[str, str]:
    """A user with a personal (model-ranked) list, and the highest SKU of it that buying takes off the lists.

    The repeat rule suppresses a SKU just bought when few of its buyers ever buy it again; one that many
    re-buy stays, for the ranker to place.
    """
    history = recommend.load_feature_set(shop.lake, shop.scored_date, RECOMMEND_CONFIG).history
    share = history.skus["repeat_share"]
    rebought = set(share[share > RECOMMEND_CONFIG.filters.repeat_min_share].index)
    lists = _nightly_lists(shop)
    personal = lists[~lists["is_fallback"] & ~lists["sku"].isin(rebought)].sort_values(["user_id", "rank"])
    first = personal.iloc[0]
    return first["user_id"], first["sku"]


def _stream_rows(shop) -> pd.DataFrame:
    return shop.lake.read_pandas("silver.events", filter=pc.field("feed") == "stream")


def test_a_purchase_removes_the_item_from_that_users_list_after_one_run(shop, api):
    user, sku = _personal_list_head(shop)
    before = api.get(f"/v1/recommendations/{user}").json()
    on_hand = _stock(api, sku)["on_hand"]
    ts = shop.stream_day_ts(10, 5)
    path = write_batch(shop, ts, [event("p-1", "purchase", sku, ts - timedelta(minutes=1), user, quantity=1)])

    summary = run(ts, "inc-1", lake=shop.lake)

    after = api.get(f"/v1/recommendations/{user}").json()
    assert sku in [item["sku"] for item in before["items"]]
    assert sku not in _items(api, user)
    assert len(after["items"]) == len(before["items"]) == RECOMMEND_CONFIG.top_k
    assert after["version"] == before["version"]  # written into the nightly version, not a new one
    assert _stock(api, sku)["on_hand"] == on_hand - 1
    assert summary["batch"]["merged"] == 1
    assert summary["overlaid"] == {"inventory": 1} | dict.fromkeys(LIST_DATASETS, 1)
    assert summary["skipped"] == {}
    assert all(sku not in _items(api, user, served_list) for served_list in USER_LISTS)
    watermark = read_watermark(shop.lake, STREAM)
    assert watermark.last_file == path.name and watermark.run_id == "inc-1"
    # One nightly run published every dataset, under one version id.
    assert watermark.served_versions == dict.fromkeys([*LIST_DATASETS, "inventory"], before["version"])
    assert run(ts + timedelta(minutes=5), "inc-2", lake=shop.lake)["status"] == "up_to_date"
    row = _stream_rows(shop).set_index("event_id").loc["p-1"]
    assert (row["event_date"], row["landing_date"]) == (ts.date(), ts.date())
    lines = shop.lake.read_pandas("silver.order_lines", filter=pc.field("event_id") == "p-1")
    assert lines[["user_id", "sku", "quantity", "feed"]].values.tolist() == [[user, sku, 1, "stream"]]


def test_a_sold_out_sku_disappears_from_every_served_list_after_one_run(shop, api):
    lists = _nightly_lists(shop, None)
    shows = lists.pivot_table(index=["sku", "user_id"], columns="list", values="rank", aggfunc="size") > 0
    # Of the SKUs in somebody's main, buy-again and discover list alike, the one most users show in a
    # buy-again or discover list but not in their main list.
    everywhere = shows.groupby("sku").any().all(axis=1)
    elsewhere = (~shows["all"] & (shows["buy_again"] | shows["discover"])).groupby("sku").sum()
    sku = elsewhere[everywhere].idxmax()
    holders = {name: set(lists.loc[(lists["sku"] == sku) & (lists["list"] == name), "user_id"]) for name in USER_LISTS}
    users = set().union(*holders.values())
    on_hand = _stock(api, sku)["on_hand"]
    ts = shop.stream_day_ts(10, 5)
    # An anonymous order for every unit left: nobody's own purchase, everybody's lists change.
    write_batch(shop, ts, [event("so-1", "purchase", sku, ts - timedelta(minutes=1), None, quantity=on_hand)])

    summary = run(ts, "inc-1", lake=shop.lake)

    assert len(holders["all"]) > 5 and holders["buy_again"] and holders["discover"] and on_hand > 0
    assert users - holders["all"]  # the buy-again and discover lists count, not only the main one
    assert summary["sold_out_skus"] == [sku]
    # Only the users whose lists showed it, each with all three lists anew.
    assert summary["users_reranked"] == len(users)
    assert summary["overlaid"] == {"inventory": 1} | dict.fromkeys(LIST_DATASETS, len(users))
    for user in sorted(users):
        for served_list in USER_LISTS:
            assert sku not in _items(api, user, served_list), (user, served_list)
        assert len(_items(api, user)) == RECOMMEND_CONFIG.top_k, user
    assert _stock(api, sku)["on_hand"] == 0


def test_a_sku_selling_out_leaves_the_lists_earlier_runs_overlaid(shop, api):
    user, bought = _personal_list_head(shop)
    lists = _nightly_lists(shop)
    nightly = set(lists.loc[lists["user_id"] == user, "sku"])
    ts = shop.stream_day_ts(10, 5)
    write_batch(shop, ts, [event("p-1", "purchase", bought, ts - timedelta(minutes=1), user)])
    run(ts, "inc-1", lake=shop.lake)
    # The list moved up one place and took in a SKU the nightly list did not show.
    newcomers = [sku for sku in _items(api, user) if sku not in nightly]
    sku = newcomers[0]
    later = ts + timedelta(minutes=5)
    units = _stock(api, sku)["on_hand"]
    write_batch(shop, later, [event("so-1", "purchase", sku, later - timedelta(minutes=1), None, quantity=units)])

    summary = run(later, "inc-2", lake=shop.lake)

    assert units > 0 and sku in summary["sold_out_skus"]
    assert sku not in _items(api, user)


def test_replayed_and_duplicated_batches_are_idempotent(shop, api):
    user, sku = _personal_list_head(shop)
    replayed = shop.lake.read_pandas("silver.events").sort_values("event_id").iloc[0]
    ts = shop.stream_day_ts(11)
    fresh = [
        event("r-1", "view", sku, ts - timedelta(minutes=3), user),
        event("r-2", "add_to_cart", sku, ts - timedelta(minutes=2), user),
        event("r-3", "purchase", sku, ts - timedelta(minutes=1), user, quantity=2),
    ]
    nightly = event(
        replayed["event_id"], replayed["event_type"], replayed["sku"], replayed["event_ts"], None, 1, "1.00"
    )
    lines = [*fresh, fresh[0], nightly]  # a duplicate line and a replay of an event the nightly delivered
    silver_before = len(shop.lake.read_pandas("silver.events", columns=["event_id"]))

    write_batch(shop, ts, lines)
    first = run(ts, "inc-1", lake=shop.lake)
    silver_after = len(shop.lake.read_pandas("silver.events", columns=["event_id"]))
    order_lines = len(shop.lake.read_pandas("silver.order_lines", columns=["event_id"]))
    on_hand = _stock(api, sku)["on_hand"]
    replay = write_batch(shop, ts + timedelta(minutes=5), lines)  # the whole batch sent again
    second = run(ts + timedelta(minutes=5), "inc-2", lake=shop.lake)

    assert first["batch"] == {
        "lines": 5,
        "unique": 4,
        "already_in_silver": 1,
        "bots": 0,
        "quarantined": 0,
        "merged": 3,
        "duplicates": 2,
    }
    assert silver_after == silver_before + 3
    assert second["files"] == [replay.name]
    assert second["batch"]["merged"] == 0 and second["batch"]["already_in_silver"] == 4
    assert len(shop.lake.read_pandas("silver.events", columns=["event_id"])) == silver_after
    assert len(shop.lake.read_pandas("silver.order_lines", columns=["event_id"])) == order_lines
    assert sorted(_stream_rows(shop)["event_id"]) == ["r-1", "r-2", "r-3"]
    (accounted,) = shop.lake.read_pandas("ops.row_accounting", filter=pc.field("dataset") == "events_stream").to_dict(
        "records"
    )
    assert (accounted["landed"], accounted["silver"], accounted["duplicates"]) == (10, 3, 7)
    assert _stock(api, sku)["on_hand"] == on_hand  # the replayed purchase did not sell stock twice
    assert sku not in _items(api, user)


def test_late_events_land_in_their_day_and_bad_lines_are_quarantined(shop):
    user, sku = _personal_list_head(shop)
    ts = shop.stream_day_ts(12)
    lines = [
        event("late-1", "view", sku, ts - timedelta(days=2), user),
        event("late-2", "view", sku, ts - timedelta(days=9), user),  # older than late_event_max_days
        event("odd-1", "wishlist", sku, ts - timedelta(minutes=1), user),
        '{"event_id": "bad-1", "event_type": "view", "sku": ',
    ]
    path = write_batch(shop, ts, lines)

    summary = run(ts, "inc-1", lake=shop.lake)

    late = _stream_rows(shop).set_index("event_id").loc["late-1"]
    assert late["event_date"] == (ts - timedelta(days=2)).date() and late["landing_date"] == ts.date()
    quarantine = shop.lake.read_pandas(
        "ops.quarantine", filter=pc.field("stage").isin(["stream_clean", "stream_validate"])
    )
    found = {(row.record_key, row.reason, row.stage) for row in quarantine.itertuples()}
    assert found == {
        ("late-2", "event_ts_out_of_window", "stream_validate"),
        ("odd-1", "unknown_event_type", "stream_validate"),
        (None, "malformed_json", "stream_clean"),
    }
    assert set(quarantine["source_file"].str.rsplit("/", n=1).str[-1]) == {path.name}
    assert summary["batch"]["lines"] == 4 and summary["batch"]["merged"] == 1
    assert summary["batch"]["quarantined"] == 3
    (accounted,) = shop.lake.read_pandas("ops.row_accounting", filter=pc.field("dataset") == "events_stream").to_dict(
        "records"
    )
    assert accounted["landing_date"] == ts.date()
    assert (accounted["landed"], accounted["silver"]) == (4, 1)
    assert (accounted["quarantined_clean"], accounted["quarantined_validate"], accounted["bots"]) == (1, 2, 0)


def test_the_watermark_stays_when_the_store_refuses_writes_and_a_rerun_takes_the_same_files(shop, api, spark):
    user, sku = _personal_list_head(shop)
    ts = shop.stream_day_ts(10, 5)
    path = write_batch(shop, ts, [event("p-1", "purchase", sku, ts - timedelta(minutes=1), user)])
    impatient = open_shop(shop.settings.var_root.parent, spark, serving_store=ServingConfig(sqlite_busy_timeout_s=0.2))
    holder = sqlite3.connect(shop.settings.var_root / "serving.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the store: reads work, writes time out
    try:
        with pytest.raises(StoreUnavailableError):
            run(ts, "inc-fails", lake=impatient.lake)
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert read_watermark(shop.lake, STREAM).last_file is None
    assert sku in _items(api, user)
    retry = run(ts, "inc-retry", lake=shop.lake)
    assert retry["files"] == [path.name]
    # The failed run had merged the event: the retry finds it in silver and still refreshes its user.
    assert retry["batch"]["already_in_silver"] == 1 and retry["batch"]["merged"] == 0
    assert sku not in _items(api, user)
    assert read_watermark(shop.lake, STREAM).last_file == path.name


def test_an_unreachable_store_fails_the_run_before_anything_is_read(shop, spark):
    ts = shop.stream_day_ts(10, 5)
    write_batch(shop, ts, [event("v-1", "view", "SKU-000001", ts - timedelta(minutes=1), "U-000001")])
    down = open_shop(shop.settings.var_root.parent, spark, serving_url=f"redis://127.0.0.1:{_free_port()}/0")
    with pytest.raises(StoreUnavailableError):
        run(ts, "inc-1", lake=down.lake)
    assert read_watermark(shop.lake, STREAM).last_file is None
    assert _stream_rows(shop).empty


def _rescore(shop, keep: str | None = None, model_version: str | None = None) -> None:
    """The nightly scores its date again with new content: every list but ``keep``'s moves.

    ``model_version``: what scored it (a retrained model or a baseline); by default the same.
    """
    where = pc.field("scored_date") == pa.scalar(shop.scored_date, pa.date32())
    rows = shop.lake.read_arrow("gold.recommendations", filter=where)
    score = rows.schema.get_field_index("score")
    moved = pc.if_else(pc.equal(rows["user_id"], keep or ""), rows["score"], pc.add(rows["score"], 1.0))
    rows = rows.set_column(score, rows.schema.field(score), moved)
    if model_version is not None:
        column = rows.schema.get_field_index("model_version")
        labels = pa.array([model_version] * rows.num_rows, rows.schema.field(column).type)
        rows = rows.set_column(column, rows.schema.field(column), labels)
    shop.lake.write_arrow(rows, "gold.recommendations", replace_where=f"scored_date = '{shop.scored_date}'")


def _publish(shop, datasets, run_id: str, settings=None) -> dict[str, str]:
    """Publish ``datasets`` of the shop's scored date as the nightly does; their versions."""
    settings = settings or shop.settings
    return {
        dataset: publish_dataset(dataset, shop.scored_date, run_id, settings, triggered_by="nightly_retrain").version
        for dataset in datasets
    }


def test_a_newer_nightly_version_refuses_stale_overlays_and_supersedes_applied_ones(shop, api):
    user, sku = _personal_list_head(shop)
    settings, lake = shop.settings, shop.lake
    ts = shop.stream_day_ts(10, 5)
    write_batch(shop, ts, [event("p-1", "purchase", sku, ts - timedelta(minutes=1), user)])

    # Computed against the nightly version V1; the nightly publishes V2 before the overlay is written.
    watermark = read_watermark(lake, STREAM)
    files = pending_files(settings.landing / "events/stream", set(), 10, JSON_SUFFIXES + CSV_SUFFIXES)
    batch = merge_batch(lake, files, ts, "inc-1")
    refresh = build_refresh(lake, batch, watermark, current_versions(settings), ts, settings.incremental)
    _rescore(shop, keep=user)  # V2 must hold new lists: publishing the same content re-points to V1
    v2 = publish_dataset("recommendations", shop.scored_date, "nightly-2", settings, triggered_by="nightly_retrain")
    assert v2.version not in {overlay.based_on for overlay in refresh.overlays}
    assert publish_refresh(refresh, settings) is False
    served = api.get(f"/v1/recommendations/{user}").json()
    assert served["version"] == v2.version and sku in [item["sku"] for item in served["items"]]
    assert read_watermark(lake, STREAM).last_file is None

    # The next run computes against V2.
    caught_up = run(ts, "inc-2", lake=lake)
    assert "recommendations" in caught_up["caught_up"]
    assert sku not in _items(api, user)

    # A later nightly publish replaces the overlaid values wholesale...
    v3 = publish_dataset("recommendations", shop.scored_date, "nightly-3", settings, triggered_by="nightly_retrain")
    assert api.get(f"/v1/recommendations/{user}").json()["version"] == v3.version
    assert sku in _items(api, user)
    # ...and the next run, with no new file, re-applies what the stream delivered since V3's feature day.
    again = run(ts + timedelta(minutes=5), "inc-3", lake=lake)
    assert again["files"] == [] and again["caught_up"] == ["recommendations"]
    assert sku not in _items(api, user)
    assert read_watermark(lake, STREAM).served_versions["recommendations"] == v3.version


def test_a_store_without_the_new_lists_refreshes_recommendations_and_catches_them_up_once_published(shop, spark):
    # A store from before buy_again and discover were served: only the main list and stock are published.
    root = shop.settings.var_root.parent
    older = open_shop(root, spark, serving_url=f"sqlite:///{(root / 'var' / 'older.db').as_posix()}")
    first = _publish(older, ["inventory", "recommendations"], "nightly-1", older.settings)
    user, sku = _personal_list_head(shop)
    ts = shop.stream_day_ts(10, 5)
    write_batch(shop, ts, [event("p-1", "purchase", sku, ts - timedelta(minutes=1), user)])

    with TestClient(create_app(older.settings), base_url="http://localhost") as api:
        summary = run(ts, "inc-1", lake=older.lake)

        assert summary["status"] == "refreshed"
        assert summary["skipped"] == {"buy_again": "never published", "discover": "never published"}
        assert summary["overlaid"] == {"inventory": 1, "recommendations": 1}
        assert sku not in _items(api, user)
        assert read_watermark(older.lake, STREAM).served_versions == first
        # The nightly publishes the new lists: the next run, with no new file, applies the stream to them.
        nightly = _publish(older, ["buy_again", "discover"], "nightly-2", older.settings)
        again = run(ts + timedelta(minutes=5), "inc-2", lake=older.lake)

        assert again["files"] == [] and again["caught_up"] == ["buy_again", "discover"]
        # The buyer, the only user active in the stream, gets every list anew.
        assert again["skipped"] == {} and again["overlaid"] == dict.fromkeys(LIST_DATASETS, 1)
        assert all(sku not in _items(api, user, served_list) for served_list in USER_LISTS)
        assert read_watermark(older.lake, STREAM).served_versions == first | nightly


def test_lists_served_from_a_baseline_are_left_as_served(shop, api):
    label = f"{recommend.BASELINE_VERSION_PREFIX}p_topfreq"
    _rescore(shop, model_version=label)  # a baseline beat the model tonight
    served = _publish(shop, LIST_DATASETS, "nightly-2")
    user, sku = _personal_list_head(shop)
    before = {served_list: _items(api, user, served_list) for served_list in USER_LISTS}
    ts = shop.stream_day_ts(10, 5)
    write_batch(shop, ts, [event("p-1", "purchase", sku, ts - timedelta(minutes=1), user)])

    summary = run(ts, "inc-1", lake=shop.lake)

    assert api.get(f"/v1/recommendations/{user}").json()["model_version"] == label
    assert summary["users_reranked"] == 0 and summary["overlaid"] == {"inventory": 1}
    assert summary["skipped"] == dict.fromkeys(
        LIST_DATASETS, f"served from {label}, which beat the model: not re-ranked"
    )
    assert {served_list: _items(api, user, served_list) for served_list in USER_LISTS} == before
    assert sku in before["all"]
    assert read_watermark(shop.lake, STREAM).served_versions.items() >= served.items()


def test_a_promoted_recommender_older_than_the_ranker_features_is_not_re_ranked_with(shop, api):
    """New code with new ranker features, the model promoted before it: the served lists stay as they are
    (the nightly run retrains) instead of every 5-minute run failing on the feature count."""
    served = _publish(shop, LIST_DATASETS, "nightly-3")
    registry = ModelRegistry(shop.settings.models)
    promoted = registry.current(recommend.MODEL_NAME)
    user, sku = _personal_list_head(shop)
    before = _items(api, user, "all")
    ts = shop.stream_day_ts(10, 20)
    write_batch(shop, ts, [event("p-old", "purchase", sku, ts - timedelta(minutes=1), user)])
    registry.update_metadata(promoted, features=list(FEATURES[:-2]))
    try:
        summary = run(ts, "inc-old", lake=shop.lake)
    finally:
        registry.update_metadata(promoted, features=list(FEATURES))

    reason = f"the promoted recommender {promoted.version} predates the ranker's features: not re-ranked"
    assert summary["skipped"] == dict.fromkeys(LIST_DATASETS, reason) and summary["users_reranked"] == 0
    assert _items(api, user, "all") == before
    assert read_watermark(shop.lake, STREAM).served_versions.items() >= served.items()


def _version(dataset: str, version: str, scored_date: str, model_version: str = "m-1") -> VersionInfo:
    return VersionInfo(dataset, version, "complete", scored_date=scored_date, model_version=model_version)


def test_the_lists_re_ranked_are_the_published_model_served_ones_of_the_newest_day():
    current = {
        "recommendations": _version("recommendations", "v2", "2026-01-05"),
        "discover": _version("discover", "v1", "2026-01-04"),
        "inventory": _version("inventory", "v2", "2026-01-05"),
    }
    lists, skipped = served_lists(current, "m-1")
    assert lists == {"all": current["recommendations"]}
    assert skipped == {
        "buy_again": "never published",
        "discover": "version v1 scored 2026-01-04, the newest list 2026-01-05",
    }
    current["buy_again"] = _version("buy_again", "v2", "2026-01-05", "baseline:gp_topfreq")
    lists, skipped = served_lists(current, "m-1")
    assert list(lists) == ["all"]
    assert skipped["buy_again"] == "served from baseline:gp_topfreq, which beat the model: not re-ranked"
    assert served_lists({}, "m-1") == ({}, dict.fromkeys(LIST_DATASETS, "never published"))
    # Serving rolled back to lists of an older model: the promoted one must not re-rank over them.
    current["recommendations"] = _version("recommendations", "v1", "2026-01-05", "m-0")
    lists, skipped = served_lists(current, "m-1")
    assert "all" not in lists
    assert skipped["recommendations"] == "served from m-0, not the promoted m-1 (rolled back): not re-ranked"


def test_the_settings_bound_how_many_files_one_run_takes(shop, spark):
    ts = shop.stream_day_ts(10, 5)
    first = write_batch(shop, ts, [event("v-1", "view", "SKU-000001", ts - timedelta(minutes=2))])
    second = write_batch(shop, ts, [event("v-2", "view", "SKU-000001", ts - timedelta(minutes=1))], index=1)
    bounded = open_shop(shop.settings.var_root.parent, spark, incremental={"max_files_per_run": 1})

    summary = run(ts, "inc-1", lake=bounded.lake)

    assert summary["files"] == [first.name] and summary["batch"]["merged"] == 1
    assert read_watermark(shop.lake, STREAM).last_file == first.name
    left = pending_files(shop.stream_dir, processed_files(shop.lake, STREAM), 10, JSON_SUFFIXES + CSV_SUFFIXES)
    assert left == [second]


def test_a_file_renamed_in_late_is_taken_although_it_sorts_before_processed_ones(shop):
    """A producer with a slower clock (or a late rename) lands a batch named before one already done."""
    ts = shop.stream_day_ts(10, 10)
    on_time = write_batch(shop, ts, [event("v-on-time", "view", "SKU-000001", ts - timedelta(minutes=1))])
    assert run(ts, "inc-1", lake=shop.lake)["files"] == [on_time.name]
    late = write_batch(
        shop, ts - timedelta(minutes=5), [event("v-late", "view", "SKU-000001", ts - timedelta(minutes=6))]
    )
    assert late.name < on_time.name

    summary = run(ts + timedelta(minutes=5), "inc-2", lake=shop.lake)

    assert summary["files"] == [late.name] and summary["batch"]["merged"] == 1
    assert set(_stream_rows(shop)["event_id"]) >= {"v-on-time", "v-late"}
    assert run(ts + timedelta(minutes=10), "inc-3", lake=shop.lake)["status"] == "up_to_date"


def test_a_misnamed_file_is_set_aside_with_a_quarantine_row_and_an_alert(shop):
    ts = shop.stream_day_ts(10, 10)
    batch = write_batch(shop, ts, [event("v-1", "view", "SKU-000001", ts - timedelta(minutes=1))])
    misnamed = shop.stream_dir / "manual-fix.jsonl"
    misnamed.write_text(json.dumps(event("v-manual", "view", "SKU-000001", ts - timedelta(minutes=2))) + "\n")

    summary = run(ts, "inc-1", lake=shop.lake)

    assert summary["set_aside"] == ["manual-fix.jsonl"] and summary["files"] == [batch.name]
    assert not misnamed.exists() and [p.name for p in (shop.stream_dir / "_rejected").iterdir()] == [
        f"{ts:%Y%m%dT%H%M%SZ}-manual-fix.jsonl"
    ]
    rows = shop.lake.read_arrow("ops.quarantine", filter=pc.field("stage") == "stream_ingest").to_pylist()
    assert [(r["record_key"], r["reason"]) for r in rows] == [
        ("manual-fix.jsonl", "rejected_file:name_outside_contract")
    ]
    alerts = [json.loads(line) for line in alerts_path(shop.settings).read_text().splitlines()]
    assert any("manual-fix.jsonl" in json.dumps(a) for a in alerts)
    assert "v-manual" not in set(_stream_rows(shop)["event_id"])


def test_micro_batches_run_spark_as_the_incremental_settings_say():
    settings = load_settings(spark_master="spark://cluster:7077", spark_shuffle_partitions=8)
    local = micro_batch_settings(settings)
    assert (local.spark_master, local.spark_shuffle_partitions) == ("local[2]", 2)
    on_cluster = settings.model_copy(update={"incremental": IncrementalConfig(spark_master=None, shuffle_partitions=4)})
    cluster = micro_batch_settings(on_cluster)
    assert (cluster.spark_master, cluster.spark_shuffle_partitions) == ("spark://cluster:7077", 4)


def _on_time_view(line: str, day) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return False
    when = datetime.fromisoformat(record.get("event_ts") or "1970-01-01T00:00:00+00:00")
    return record.get("event_type") == "view" and when.astimezone(UTC).date() == day


@pytest.mark.slow
def test_the_nightly_run_after_the_stream_delivers_each_event_once(shop):
    day = shop.scored_date + timedelta(days=1)
    landed = shop.settings.landing / "events" / f"date={day}"
    with gzip.open(next(landed.glob("*.jsonl.gz")), "rt") as lines:
        nightly_line = next(line for line in lines if _on_time_view(line, day))
    delivered = json.loads(nightly_line)["event_id"]
    ts = shop.stream_day_ts(23, 55)
    write_batch(shop, ts, [nightly_line.strip()])
    assert run(ts, "inc-1", lake=shop.lake)["batch"]["merged"] == 1

    run_foundation(shop.lake, day, run_id="nightly-2")  # raises if a single row is unaccounted for

    copies = shop.lake.read_pandas("silver.events", filter=pc.field("event_id") == delivered)
    assert copies["feed"].tolist() == ["stream"]
    accounting = shop.lake.read_pandas("ops.row_accounting", filter=pc.field("dataset") == "events")
    assert accounting.set_index("landing_date").loc[day, "duplicates"] >= 1


@pytest.mark.slow
def test_the_dag_refreshes_through_airflow(shop, api, monkeypatch):
    user, sku = _personal_list_head(shop)
    tick = shop.stream_day_ts(10, 10)
    path = write_batch(
        shop, tick - timedelta(minutes=3), [event("p-1", "purchase", sku, tick - timedelta(minutes=4), user)]
    )

    lineage_log = shop.settings.var_root / "lineage.jsonl"
    monkeypatch.setenv("SHOPML_LINEAGE_LOG", str(lineage_log))  # read by the task's process
    airflow_env.test_dag("incremental_refresh", tick, settings=shop.settings)
    assert undeclared("incremental_refresh", lineage_log) == {}, "the refresh touched tables it does not declare"

    watermark = read_watermark(Lake(shop.settings), STREAM)
    assert watermark.last_file == path.name and watermark.run_id.startswith("manual__")
    assert sku not in _items(api, user)


def _list_rows(day: date, rows: list[tuple], with_list: bool) -> pa.Table:
    columns = {
        "user_id": [row[0] for row in rows],
        "sku": [row[-1] for row in rows],
        "rank": pa.array([1] * len(rows), pa.int32()),
        "scored_date": pa.array([day] * len(rows), pa.date32()),
    }
    if with_list:
        columns["list"] = [row[1] for row in rows]
    return pa.table(columns)


def test_sold_out_holders_are_read_from_the_lists_being_refreshed_old_partitions_as_main_lists(settings):
    lake, old_day, new_day = Lake(settings), date(2026, 1, 4), date(2026, 1, 5)
    lake.write_arrow(_list_rows(old_day, [("u1", "A"), ("u1", "B"), ("u2", "C")], False), "gold.recommendations")
    # A table from before the list column: its rows are main lists, the other lists have none.
    assert nightly_holders(lake, old_day, {"B"}, LIST_DATASETS) == {"u1"}
    assert nightly_holders(lake, old_day, {"B"}, ["buy_again", "discover"]) == set()
    new = [("u1", "all", "A"), ("u1", "buy_again", "B"), ("u2", "discover", "B"), ("u3", "all", "C")]
    lake.write_arrow(_list_rows(new_day, new, True), "gold.recommendations", replace_where=f"scored_date = '{new_day}'")

    assert nightly_holders(lake, new_day, {"B"}, LIST_DATASETS) == {"u1", "u2"}
    assert nightly_holders(lake, new_day, {"B"}, ["recommendations"]) == set()
    assert nightly_holders(lake, new_day, {"B", "C"}, ["recommendations", "discover"]) == {"u2", "u3"}
    # The partition written before the column grew still reads as main lists (its list is null).
    assert nightly_holders(lake, old_day, {"B"}, LIST_DATASETS) == {"u1"}
    assert nightly_holders(lake, old_day, {"B"}, ["buy_again"]) == set()
