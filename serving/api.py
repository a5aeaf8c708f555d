"""The storefront read API: precomputed recommendations, similar items, forecasts and inventory plans by key.

Start it with ``uvicorn serving.api:app --host 0.0.0.0 --port 8000`` (``make api``). The store is
the one ``Settings.serving`` names. Every read is a single key lookup (one Redis round trip, one SQLite
primary-key query) in the current version, and every response says which version and when its data
was generated, so stale data is visible. The OpenAPI schema is at ``/openapi.json``, docs at ``/docs``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import ResponseValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.datasets import DATASETS, MAIN_LIST, USER_LISTS
from serving.encoding import CustomerPayload, ForecastDay, InventoryPayload, ScoredItem
from serving.store import Lookup, ServingStore, ServingStoreError, StoreUnavailableError, open_store, utc_now
from shopml.config.serving import ServingConfig
from shopml.settings import Settings, get_settings

log = logging.getLogger(__name__)

ID_PATTERN = r"^[A-Za-z0-9_.:@-]{1,128}$"
UserId = Annotated[str, Path(pattern=ID_PATTERN, description="Customer id.")]
Sku = Annotated[str, Path(pattern=ID_PATTERN, description="Product SKU.")]
# The keys of ``USER_LISTS``, spelled out for the OpenAPI schema.
UserList = Literal["all", "buy_again", "discover"]
ListParam = Annotated[UserList, Query(alias="list", description="Which list: all, buy_again or discover.")]


class Provenance(BaseModel):
    version: str
    model_version: str
    run_id: str
    generated_at: datetime | None


class RecommendationsResponse(Provenance):
    # ``list`` on the wire; a field of that name would shadow the builtin in the annotations below.
    model_config = ConfigDict(populate_by_name=True)

    user_id: str
    served_list: UserList = Field(alias="list", description="Which list was served.")
    fallback: bool
    items: list[ScoredItem]


class SimilarResponse(Provenance):
    sku: str
    items: list[ScoredItem]


class ForecastResponse(Provenance):
    sku: str
    days: list[ForecastDay]


class InventoryResponse(Provenance):
    sku: str
    plan: InventoryPayload


class CustomerResponse(Provenance):
    user_id: str
    scores: CustomerPayload


class ErrorResponse(BaseModel):
    error: Literal[
        "not_found", "not_published", "store_unavailable", "store_error", "invalid_payload", "headers_too_large"
    ]
    detail: str
    dataset: str | None = None
    version: str | None = None


class DatasetHealth(BaseModel):
    status: Literal["ok", "stale", "missing", "incomplete"]
    version: str | None = None
    model_version: str | None = None
    generated_at: datetime | None = None
    published_at: datetime | None = None
    age_s: float | None = None
    key_count: int | None = Field(None, description="Keys the publish verified.")
    stored_keys: int | None = Field(None, description="Keys the store holds for the version now.")


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    backend: str
    reachable: bool
    error: str | None = None
    max_age_s: float
    datasets: dict[str, DatasetHealth]


class ApiError(Exception):
    def __init__(self, status_code: int, body: ErrorResponse) -> None:
        super().__init__(body.detail)
        self.status_code, self.body = status_code, body


_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "Unknown id."},
    500: {"model": ErrorResponse, "description": "The stored value for this key does not parse."},
    503: {"model": ErrorResponse, "description": "Dataset not published yet, or the store is unreachable."},
}
# What a client learns of a store failure; the backend, its host and the driver's message go to the log.
STORE_UNAVAILABLE = "the serving store is unavailable; retry shortly"
INVALID_PAYLOAD = "the stored value for this key is invalid; the operators have been told"


class CircuitBreaker:
    """Fail fast while the store is down: after a failed read, reads get a 503 at once for ``open_s``.

    The read endpoints run on the event loop, so every read that waits on a hung store holds up
    all the others; with the breaker only the read that trips it waits (``api_timeout_s``).
    """

    def __init__(self, open_s: float) -> None:
        self.open_s = open_s
        self.open_until = 0.0
        self.reason = ""

    def check(self) -> None:
        left = self.open_until - time.monotonic()
        if left > 0:
            raise StoreUnavailableError(f"store unavailable; not asked again for {left:.1f}s after: {self.reason}")

    def trip(self, exc: Exception) -> None:
        """Open on a store failure; the fast answers of an open breaker do not keep it open."""
        if self.open_until <= time.monotonic():
            self.open_until = time.monotonic() + self.open_s
            self.reason = str(exc)
            log.error("%s", exc)


class HeaderLimit:
    """Answer 431 to requests whose headers exceed ``max_bytes``, before any handler runs.

    uvicorn's default parser (httptools) sets no limit of its own: a 10 MB header was answered.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and sum(len(k) + len(v) for k, v in scope["headers"]) > self.max_bytes:
            body = ErrorResponse(error="headers_too_large", detail=f"request headers exceed {self.max_bytes} bytes")
            await JSONResponse(status_code=431, content=body.model_dump(mode="json"))(scope, receive, send)
            return
        await self.app(scope, receive, send)


def get_store(request: Request) -> ServingStore:
    return request.app.state.store


def get_breaker(request: Request) -> CircuitBreaker:
    return request.app.state.breaker


StoreDep = Annotated[ServingStore, Depends(get_store)]
BreakerDep = Annotated[CircuitBreaker, Depends(get_breaker)]


def _read(
    store: ServingStore,
    breaker: CircuitBreaker,
    dataset: str,
    entity: str,
    fallback_entity: str | None = None,
    missing_ok: bool = False,
) -> Lookup:
    """One lookup, with absent data and store failures turned into the API's error bodies.

    An unknown id is a 404, unless ``missing_ok``: then its lookup comes back without a payload.
    """
    try:
        breaker.check()
        found = store.lookup(dataset, entity, fallback_entity)
    except StoreUnavailableError as exc:
        breaker.trip(exc)
        raise ApiError(
            503, ErrorResponse(error="store_unavailable", detail=STORE_UNAVAILABLE, dataset=dataset)
        ) from exc
    if found is None:
        raise ApiError(
            503, ErrorResponse(error="not_published", detail=f"{dataset} has not been published yet", dataset=dataset)
        )
    if found.payload is None and not missing_ok:
        kind = "user" if DATASETS[dataset].entity == "user_id" else "SKU"
        raise ApiError(
            404,
            ErrorResponse(
                error="not_found",
                detail=f"unknown {kind} {entity!r} in {dataset} version {found.version}",
                dataset=dataset,
                version=found.version,
            ),
        )
    return found


def _payload(found: Lookup, dataset: str, entity: str) -> dict[str, Any]:
    """The stored JSON object of a lookup; a value that does not parse is the API's 500, logged with its key."""
    try:
        payload = json.loads(found.payload)
    except (TypeError, ValueError) as exc:
        log.error("%s version %s: the value of %r does not parse: %s", dataset, found.version, entity, exc)
        raise ApiError(
            500, ErrorResponse(error="invalid_payload", detail=INVALID_PAYLOAD, dataset=dataset, version=found.version)
        ) from exc
    if not isinstance(payload, dict):
        log.error("%s version %s: the value of %r is not a JSON object", dataset, found.version, entity)
        raise ApiError(
            500, ErrorResponse(error="invalid_payload", detail=INVALID_PAYLOAD, dataset=dataset, version=found.version)
        )
    return payload


def _provenance(found: Lookup) -> dict[str, Any]:
    return {
        "version": found.version,
        "model_version": found.model_version,
        "run_id": found.run_id,
        "generated_at": found.generated_at,
    }


def _dataset_health(store: ServingStore, dataset: str, max_age_s: float) -> DatasetHealth:
    version = store.current_version(dataset)
    info = store.get_version(dataset, version) if version else None
    if info is None:
        return DatasetHealth(status="missing")
    age = (utc_now() - info.generated_at).total_seconds() if info.generated_at else None
    stored = store.count_entries(dataset, info.version)
    fresh = age is not None and age <= max_age_s
    status = "incomplete" if stored != info.key_count else ("ok" if fresh else "stale")
    return DatasetHealth(
        status=status,
        version=info.version,
        model_version=info.model_version,
        generated_at=info.generated_at,
        published_at=info.published_at,
        age_s=age,
        key_count=info.key_count,
        stored_keys=stored,
    )


def create_app(settings: Settings | None = None, config: ServingConfig | None = None) -> FastAPI:
    """The API over the store ``settings.serving`` names (read at start-up, so tests and deployments choose it)."""
    settings = settings or get_settings()
    config = config or settings.serving_store

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The API's own timeouts: a read waits milliseconds for a hung store, a publish waits seconds.
        timeouts = {"socket_timeout_s": config.api_timeout_s, "connect_timeout_s": config.api_timeout_s}
        app.state.store = open_store(settings.serving, config.model_copy(update=timeouts))
        app.state.breaker = CircuitBreaker(config.api_breaker_open_s)
        log.info("serving from %s", app.state.store.url)
        try:
            yield
        finally:
            app.state.store.close()

    app = FastAPI(
        title="shopml storefront API",
        version="1",
        summary="Precomputed recommendations, similar items, demand forecasts and inventory plans, by key.",
        lifespan=lifespan,
    )
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(config.api_allowed_hosts))
    app.add_middleware(HeaderLimit, max_bytes=config.api_max_header_bytes)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content=exc.body.model_dump(mode="json"))

    @app.exception_handler(ServingStoreError)
    async def _store_error(_: Request, exc: ServingStoreError) -> JSONResponse:
        log.error("%s", exc)
        body = ErrorResponse(error="store_error", detail=STORE_UNAVAILABLE)
        return JSONResponse(status_code=503, content=body.model_dump(mode="json"))

    @app.exception_handler(ResponseValidationError)
    async def _invalid_payload(request: Request, exc: ResponseValidationError) -> JSONResponse:
        """A stored value that parses but lacks what the response needs (a publish that skipped validation)."""
        log.error("%s: the stored value does not fit the response: %s", request.url.path, exc.errors()[:3])
        body = ErrorResponse(error="invalid_payload", detail=INVALID_PAYLOAD)
        return JSONResponse(status_code=500, content=body.model_dump(mode="json"))

    # The read endpoints are ``async`` although the store is synchronous: a read is one sub-millisecond
    # lookup, cheaper than the hop to a worker thread it would otherwise take; measured p50 under CPU
    # contention went from 13 ms to 2 ms (bench/bench_serving.py). A hung store holds the loop for one
    # read of at most ``api_timeout_s``; the circuit breaker answers the others at once.
    async def get_recommendations(
        user_id: UserId,
        store: StoreDep,
        breaker: BreakerDep,
        k: int = config.default_k,
        served_list: ListParam = MAIN_LIST,
    ) -> dict[str, Any]:
        """Top-k of one of the user's lists: ``all`` (the main list), ``buy_again`` (items bought before) or
        ``discover`` (items new to the user).

        Unknown users get the fallback list of ``all`` and ``discover``, marked ``fallback``; a user without
        a ``buy_again`` list (no purchases) gets an empty one, so the storefront hides that carousel.
        """
        spec = DATASETS[USER_LISTS[served_list]]
        found = _read(store, breaker, spec.name, user_id, spec.fallback_entity, missing_ok=spec.fallback_entity is None)
        payload = (
            _payload(found, spec.name, user_id) if found.payload is not None else {"is_fallback": False, "items": []}
        )
        return {
            "user_id": user_id,
            "list": served_list,
            "fallback": found.fallback or bool(payload.get("is_fallback")),
            "items": (payload.get("items") or [])[:k],
            **_provenance(found),
        }

    # The bounds of k come from the config; string annotations (PEP 563) cannot refer to it, so the
    # parameter's type is set as an object before FastAPI reads the signature.
    get_recommendations.__annotations__["k"] = Annotated[
        int, Query(ge=1, le=config.max_k, description="Number of items.")
    ]
    app.get("/v1/recommendations/{user_id}", response_model=RecommendationsResponse, responses=_ERRORS)(
        get_recommendations
    )

    @app.get("/v1/similar/{sku}", response_model=SimilarResponse, responses=_ERRORS)
    async def get_similar(sku: Sku, store: StoreDep, breaker: BreakerDep) -> dict[str, Any]:
        """Similar products for a product page."""
        found = _read(store, breaker, "similar", sku)
        return {"sku": sku, "items": _payload(found, "similar", sku).get("items"), **_provenance(found)}

    @app.get("/v1/forecasts/{sku}", response_model=ForecastResponse, responses=_ERRORS)
    async def get_forecast(sku: Sku, store: StoreDep, breaker: BreakerDep) -> dict[str, Any]:
        """Daily demand forecast (P10/P50/P90) over the horizon."""
        found = _read(store, breaker, "forecasts", sku)
        return {"sku": sku, "days": _payload(found, "forecasts", sku).get("days"), **_provenance(found)}

    @app.get("/v1/inventory/{sku}", response_model=InventoryResponse, responses=_ERRORS)
    async def get_inventory(sku: Sku, store: StoreDep, breaker: BreakerDep) -> dict[str, Any]:
        """Inventory plan: safety stock, reorder point, order quantity, cover and stockout risk."""
        found = _read(store, breaker, "inventory", sku)
        return {"sku": sku, "plan": _payload(found, "inventory", sku), **_provenance(found)}

    @app.get("/v1/customers/{user_id}", response_model=CustomerResponse, responses=_ERRORS)
    async def get_customer(user_id: UserId, store: StoreDep, breaker: BreakerDep) -> dict[str, Any]:
        """Customer scores for the CRM: purchase propensity, churn risk, expected value, RFM segment, reasons."""
        found = _read(store, breaker, "customers", user_id)
        return {"user_id": user_id, "scores": _payload(found, "customers", user_id), **_provenance(found)}

    @app.get("/healthz", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
    def healthz(store: StoreDep) -> JSONResponse:
        """Backend reachable, current version, age and key count of each dataset; ``degraded`` when one is
        stale, missing or holds fewer keys than its publish verified. ``HEAD`` for load balancers."""
        backend = store.url.split(":", 1)[0]
        try:
            store.ping()
            datasets = {name: _dataset_health(store, name, config.max_dataset_age_s) for name in DATASETS}
        except ServingStoreError as exc:
            log.error("health check: %s", exc)
            body = HealthResponse(
                status="degraded",
                backend=backend,
                reachable=False,
                error=STORE_UNAVAILABLE,
                max_age_s=config.max_dataset_age_s,
                datasets={},
            )
            return JSONResponse(status_code=503, content=body.model_dump(mode="json"))
        healthy = all(d.status == "ok" for d in datasets.values())
        body = HealthResponse(
            status="ok" if healthy else "degraded",
            backend=backend,
            reachable=True,
            max_age_s=config.max_dataset_age_s,
            datasets=datasets,
        )
        return JSONResponse(status_code=200, content=body.model_dump(mode="json"))

    app.head("/healthz", include_in_schema=False)(healthz)
    return app


app = create_app()
