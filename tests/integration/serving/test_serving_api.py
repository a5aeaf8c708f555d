"""The storefront API through its HTTP client, on both stores: bodies, lists, errors, fallback, health, OpenAPI."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import date, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from serving.api import create_app
from serving.datasets import DATASETS
from serving.publish import publish_dataset, version_id
from serving.store import RedisStore, open_store, utc_now
from shopml.config.serving import ServingConfig
from shopml.settings import load_settings
from tests.integration.serving.serving_tables import (
    customer_scores_table,
    forecasts_table,
    inventory_table,
    recommendations_table,
    similar_table,
    user_lists_table,
)

D1 = date(2026, 1, 2)
V1 = version_id(D1, "run-1")
PROVENANCE = {"version": V1, "run_id": "run-1", "generated_at": "2026-01-02T03:00:00Z"}
# The three lists of gold.recommendations: "cold" has no purchases (no buy_again list) and fallback lists.
LISTS = {
    "all": {"u1": ["a", "b", "c"], "cold": ["p"], "__default__": ["x", "y"]},
    "buy_again": {"u1": ["b1", "b2"]},
    "discover": {"u1": ["n1", "n2", "n3"], "cold": ["q"], "__default__": ["d1", "d2"]},
}


def write_tables(lake, generated_at=None) -> None:
    stamp = {"generated_at": generated_at} if generated_at else {}
    lake.write_arrow(
        user_lists_table(LISTS, D1, fallback_users=frozenset({"__default__", "cold"}), **stamp), "gold.recommendations"
    )
    lake.write_arrow(similar_table({"s1": ["s2", "s3"]}, D1, **stamp), "gold.similar_items")
    lake.write_arrow(inventory_table(["s0", "s1"], D1, **stamp), "gold.inventory_plan")
    lake.write_arrow(forecasts_table(["s1"], D1), "gold.demand_forecasts")
    lake.write_arrow(customer_scores_table(["u0", "u1"], D1, **stamp), "gold.customer_scores")


@pytest.fixture
def published(serving_settings, serving_lake, serving_config):
    """Every dataset published once from tiny tables."""
    write_tables(serving_lake)
    for dataset in DATASETS:
        publish_dataset(dataset, D1, "run-1", settings=serving_settings, config=serving_config)
    return serving_settings


@pytest.fixture
def client(published, serving_config):
    with TestClient(create_app(published, serving_config), base_url="http://localhost") as test_client:
        yield test_client


def test_a_customers_scores_with_their_reasons(client):
    response = client.get("/v1/customers/u1")

    assert response.status_code == 200
    assert response.json() == {
        **PROVENANCE,
        "model_version": "cust-v1",
        "user_id": "u1",
        "scores": {
            "p_purchase_30d": 0.1,
            "p_churn_90d": 0.25,
            "expected_revenue_90d": 12.5,
            "rfm_segment": "R5F4M3",
            "top_reasons": ["recency_days=3 (-0.61)", 'note="quoted" (+0.10)'],
            "scored_by": "purchase=model churn=model value=bgnbd",
        },
    }
    assert client.get("/v1/customers/u0").json()["scores"]["p_churn_90d"] is None
    assert client.get("/v1/customers/nobody").status_code == 404


def test_recommendations_for_a_known_user(client):
    response = client.get("/v1/recommendations/u1", params={"k": 2})

    assert response.status_code == 200
    assert response.json() == {
        **PROVENANCE,
        "model_version": "rec-v1",
        "user_id": "u1",
        "list": "all",
        "fallback": False,
        "items": [
            {"sku": "a", "score": 1.0, "reason": "trending"},
            {"sku": "b", "score": 0.5, "reason": "trending"},
        ],
    }


@pytest.mark.parametrize(
    ("served", "skus", "reason"),
    [
        ("all", ["a", "b", "c"], "trending"),
        ("buy_again", ["b1", "b2"], "bought_before:3x:2025-12-20"),
        ("discover", ["n1", "n2", "n3"], "retrieval"),
    ],
)
def test_each_list_serves_its_own_rows_with_provenance(client, served, skus, reason):
    response = client.get("/v1/recommendations/u1", params={"list": served})

    assert response.status_code == 200
    assert response.json() == {
        **PROVENANCE,
        "model_version": "rec-v1",
        "user_id": "u1",
        "list": served,
        "fallback": False,
        "items": [
            {"sku": sku, "score": round(1.0 / rank, 6), "reason": reason} for rank, sku in enumerate(skus, start=1)
        ],
    }


def test_k_cuts_every_list(client):
    for served in ("all", "buy_again", "discover"):
        body = client.get("/v1/recommendations/u1", params={"list": served, "k": 1}).json()
        assert len(body["items"]) == 1, served


@pytest.mark.parametrize("user", ["cold", "stranger"])
def test_no_buy_again_list_is_200_and_empty_never_the_default_one(client, user):
    response = client.get(f"/v1/recommendations/{user}", params={"list": "buy_again"})

    assert response.status_code == 200
    assert response.json() == {
        **PROVENANCE,
        "model_version": "rec-v1",
        "user_id": user,
        "list": "buy_again",
        "fallback": False,
        "items": [],
    }


def test_discover_falls_back_to_the_default_list(client):
    stranger = client.get("/v1/recommendations/stranger", params={"list": "discover"}).json()
    cold = client.get("/v1/recommendations/cold", params={"list": "discover"}).json()

    assert (stranger["list"], stranger["fallback"], [i["sku"] for i in stranger["items"]]) == (
        "discover",
        True,
        ["d1", "d2"],
    )
    assert (cold["fallback"], [i["sku"] for i in cold["items"]]) == (True, ["q"])


@pytest.mark.parametrize("served", ["ALL", "similar", "buy-again", ""])
def test_an_unknown_list_is_422(client, served):
    response = client.get("/v1/recommendations/u1", params={"list": served})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "list"]


def test_a_list_never_published_is_503(serving_settings, serving_lake, serving_config):
    serving_lake.write_arrow(recommendations_table({"u1": ["a"]}, D1), "gold.recommendations")
    publish_dataset("recommendations", D1, "run-1", settings=serving_settings, config=serving_config)

    with TestClient(create_app(serving_settings, serving_config), base_url="http://localhost") as client:
        main = client.get("/v1/recommendations/u1")
        again = client.get("/v1/recommendations/u1", params={"list": "buy_again"})

    assert main.status_code == 200 and main.json()["list"] == "all"
    assert again.status_code == 503
    assert again.json() == {
        "error": "not_published",
        "detail": "buy_again has not been published yet",
        "dataset": "buy_again",
        "version": None,
    }


def test_unknown_user_gets_the_fallback_list_marked_as_fallback(client):
    body = client.get("/v1/recommendations/stranger").json()

    assert (body["user_id"], body["fallback"]) == ("stranger", True)
    assert [item["sku"] for item in body["items"]] == ["x", "y"]


def test_a_cold_start_list_is_marked_as_fallback(client):
    body = client.get("/v1/recommendations/cold").json()

    assert body["fallback"] is True and [item["sku"] for item in body["items"]] == ["p"]


def test_default_k_is_applied(published, serving_config):
    """u1's list has 3 items: a default k of 2 must cut it (the stock default of 10 could not show it)."""
    config = serving_config.model_copy(update={"default_k": 2})
    with TestClient(create_app(published, config), base_url="http://localhost") as client:
        assert [item["sku"] for item in client.get("/v1/recommendations/u1").json()["items"]] == ["a", "b"]
        assert len(client.get("/v1/recommendations/u1", params={"k": 3}).json()["items"]) == 3


@pytest.mark.parametrize("k", [0, 101, "many"])
def test_k_out_of_range_is_422(client, k):
    response = client.get("/v1/recommendations/u1", params={"k": k})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "k"]


@pytest.mark.parametrize("path", ["/v1/recommendations/bad%20id", "/v1/similar/a$b", "/v1/inventory/" + "x" * 129])
def test_invalid_ids_are_422(client, path):
    response = client.get(path)

    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "string_pattern_mismatch"


def test_similar_items(client):
    assert client.get("/v1/similar/s1").json() == {
        **PROVENANCE,
        "model_version": "sim-v1",
        "sku": "s1",
        "items": [
            {"sku": "s2", "score": 0.9, "reason": "co_purchase"},
            {"sku": "s3", "score": 0.8, "reason": "co_purchase"},
        ],
    }


def test_forecast(client):
    assert client.get("/v1/forecasts/s1").json() == {
        **PROVENANCE,
        "model_version": "fc-v1",
        "sku": "s1",
        "days": [
            {"date": "2026-01-03", "horizon_day": 1, "mean": 1.75, "p10": 1.0, "p50": 1.5, "p90": 2.0},
            {"date": "2026-01-04", "horizon_day": 2, "mean": 2.75, "p10": 2.0, "p50": 2.5, "p90": 3.0},
        ],
    }


def test_inventory_plan(client):
    body = client.get("/v1/inventory/s1").json()

    assert body["sku"] == "s1" and body["model_version"] == "inv-v1"
    assert body["plan"] == {
        "on_hand": 1,
        "on_order": 5,
        "lead_time_days": 7,
        "expected_lead_time_demand": 14.0,
        "safety_stock": 3.25,
        "reorder_point": 17.25,
        "recommended_order_qty": 12.0,
        "days_of_cover": 2.5,
        "stockout_probability": 0.125,
        "status": "reorder",
    }


@pytest.mark.parametrize("dataset", ["similar", "forecasts", "inventory"])
def test_unknown_sku_is_404_with_a_clear_body(client, dataset):
    response = client.get(f"/v1/{dataset}/nope")

    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "detail": f"unknown SKU 'nope' in {dataset} version {V1}",
        "dataset": dataset,
        "version": V1,
    }


def test_healthz_is_degraded_when_data_is_older_than_the_configured_age(client):
    body = client.get("/healthz").json()

    assert body["status"] == "degraded" and body["reachable"] is True
    assert {name: d["status"] for name, d in body["datasets"].items()} == dict.fromkeys(DATASETS, "stale")
    assert body["datasets"]["inventory"]["version"] == V1
    assert body["datasets"]["inventory"]["key_count"] == body["datasets"]["inventory"]["stored_keys"] == 2
    assert body["datasets"]["inventory"]["age_s"] > body["max_age_s"]


def test_healthz_is_ok_only_when_every_dataset_is_fresh(serving_settings, serving_lake, serving_config):
    fresh = utc_now() - timedelta(hours=1)
    write_tables(serving_lake, generated_at=fresh)
    for dataset in DATASETS:
        publish_dataset(dataset, D1, "run-1", settings=serving_settings, config=serving_config)
    config = serving_config.model_copy(update={"max_dataset_age_s": 3 * 3600})

    with TestClient(create_app(serving_settings, config), base_url="http://localhost") as client:
        one_stale = client.get("/healthz")
        # Rescored with identical content: the same version serves on, fresh again.
        serving_lake.write_arrow(forecasts_table(["s1"], D1, generated_at=fresh), "gold.demand_forecasts")
        republished = publish_dataset("forecasts", D1, "run-2", settings=serving_settings, config=serving_config)
        all_fresh = client.get("/healthz")

    assert one_stale.status_code == 200 and one_stale.json()["status"] == "degraded"
    assert {name: d["status"] for name, d in one_stale.json()["datasets"].items()} == {
        **dict.fromkeys(DATASETS, "ok"),
        "forecasts": "stale",
    }
    assert republished.reused and all_fresh.status_code == 200 and all_fresh.json()["status"] == "ok"
    assert 3500 < all_fresh.json()["datasets"]["inventory"]["age_s"] < 3 * 3600


def test_a_dataset_never_published_is_503_and_missing_in_healthz(serving_settings, serving_config):
    with TestClient(create_app(serving_settings, serving_config), base_url="http://localhost") as client:
        response = client.get("/v1/similar/s1")
        health = client.get("/healthz").json()

    assert response.status_code == 503
    assert response.json()["error"] == "not_published"
    assert health["status"] == "degraded" and health["datasets"]["similar"] == {
        "status": "missing",
        "version": None,
        "model_version": None,
        "generated_at": None,
        "published_at": None,
        "age_s": None,
        "key_count": None,
        "stored_keys": None,
    }


def test_an_unreachable_store_degrades_healthz_and_reads(tmp_path, serving_config, unused_port):
    settings = load_settings(var_root=tmp_path / "var", serving_url=f"redis://127.0.0.1:{unused_port}/0")
    config = serving_config.model_copy(update={"connect_timeout_s": 0.5, "socket_timeout_s": 0.5})
    with TestClient(create_app(settings, config), base_url="http://localhost") as client:
        health = client.get("/healthz")
        read = client.get("/v1/recommendations/u1")

    assert health.status_code == 503
    assert (health.json()["status"], health.json()["reachable"], health.json()["backend"]) == (
        "degraded",
        False,
        "redis",
    )
    assert "unavailable" in health.json()["error"]
    assert read.status_code == 503 and read.json()["error"] == "store_unavailable"
    # The backend's address and the driver's message are for the log, not for whoever calls the API.
    for body in (health.text, read.text):
        assert str(unused_port) not in body and "127.0.0.1" not in body and "Connection" not in body


def test_a_host_header_not_allowed_is_400(client):
    assert client.get("/v1/similar/s1", headers={"Host": "attacker.example"}).status_code == 400
    assert client.get("/v1/similar/s1", headers={"Host": "127.0.0.1:8000"}).status_code == 200


def test_head_healthz_answers_without_a_body(client):
    response = client.head("/healthz")

    assert response.status_code == 200 and response.content == b""


def test_oversized_headers_are_431_before_any_handler(live_api, published, serving_config):
    base = live_api(published, serving_config)

    big = httpx.get(f"{base}/v1/similar/s1", headers={"X-Padding": "a" * 1_000_000})
    normal = httpx.get(f"{base}/v1/similar/s1")

    assert big.status_code == 431 and big.json()["error"] == "headers_too_large"
    assert normal.status_code == 200


def _plant(settings, config, dataset: str, entity: str, payload: bytes) -> None:
    """Overwrite one stored value in the current version, as a faulty writer or a hand edit would."""
    store = open_store(settings.serving, config)
    try:
        assert store.overlay(dataset, store.current_version(dataset), [entity], [payload], utc_now())
    finally:
        store.close()


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        (b"{not json", "/v1/similar/s1"),
        (b"[1, 2]", "/v1/forecasts/s1"),
        (b'{"items": [{"no_sku": 1}]}', "/v1/similar/s1"),
        (b'{"is_fallback": false, "items": "abc"}', "/v1/recommendations/u1"),
    ],
)
def test_a_malformed_stored_value_is_a_500_with_a_json_body(published, serving_config, payload, path):
    dataset = {"similar": "similar", "forecasts": "forecasts", "recommendations": "recommendations"}[path.split("/")[2]]
    entity = path.rsplit("/", 1)[1]
    _plant(published, serving_config, dataset, entity, payload)

    with TestClient(create_app(published, serving_config), base_url="http://localhost") as client:
        response = client.get(path)
        other = client.get("/v1/recommendations/cold")

    assert response.status_code == 500
    assert response.json()["error"] == "invalid_payload" and "operators" in response.json()["detail"]
    assert other.status_code == 200, "one bad value must not break the others"


def test_healthz_says_incomplete_when_the_store_lost_keys(published, serving_config):
    store = open_store(published.serving, serving_config)
    version = store.current_version("inventory")
    if isinstance(store, RedisStore):
        store._redis.hdel(store.key("inventory", "data", version), "s0")
    else:
        store._connect().execute("DELETE FROM serving_entry WHERE dataset = 'inventory' AND entity = 's0'")
    store.close()

    with TestClient(create_app(published, serving_config), base_url="http://localhost") as client:
        inventory = client.get("/healthz").json()["datasets"]["inventory"]

    assert (inventory["status"], inventory["key_count"], inventory["stored_keys"]) == ("incomplete", 2, 1)


def test_openapi_schema_is_published(client):
    schema = client.get("/openapi.json").json()

    assert set(schema["paths"]) == {
        "/v1/recommendations/{user_id}",
        "/v1/similar/{sku}",
        "/v1/forecasts/{sku}",
        "/v1/inventory/{sku}",
        "/v1/customers/{user_id}",
        "/healthz",
    }
    parameters = {p["name"]: p for p in schema["paths"]["/v1/recommendations/{user_id}"]["get"]["parameters"]}
    k = parameters["k"]
    assert (k["schema"]["minimum"], k["schema"]["maximum"], k["schema"]["default"]) == (1, 100, 10)
    served = parameters["list"]["schema"]
    assert (served["enum"], served["default"]) == (["all", "buy_again", "discover"], "all")
    assert schema["components"]["schemas"]["RecommendationsResponse"]["properties"]["list"]["enum"] == served["enum"]
    assert "ErrorResponse" in schema["components"]["schemas"]


@pytest.fixture
def hung_redis_url():
    """A port that takes connections and never answers: the kernel completes them for the listen backlog."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(128)
        yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"


def test_a_hung_store_answers_every_concurrent_request_within_a_second(tmp_path, hung_redis_url):
    """Ten storefront reads and a health check at once, against a store that never answers: each gets its
    503 in well under a second (one read waits ``api_timeout_s``, the circuit breaker answers the rest)."""
    app = create_app(load_settings(var_root=tmp_path / "var", serving_url=hung_redis_url), ServingConfig())

    async def burst():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
                started = time.monotonic()

                async def timed(path):
                    response = await http.get(path)
                    return response, time.monotonic() - started

                paths = [f"/v1/recommendations/u{i}" for i in range(8)] + ["/v1/similar/s1", "/v1/forecasts/s1"]
                return await asyncio.gather(*map(timed, [*paths, "/healthz"]))

    results = asyncio.run(burst())

    assert [response.status_code for response, _ in results] == [503] * 11
    assert max(seconds for _, seconds in results) < 1.0
    assert {response.json()["error"] for response, _ in results[:-1]} == {"store_unavailable"}
    assert results[-1][0].json()["reachable"] is False
