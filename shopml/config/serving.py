"""Knobs of the serving store, the publisher and the read API.

The store URL itself comes from ``Settings.serving``; everything here has a
default that suits one nightly publish per dataset. The lead nests
``ServingConfig`` into ``Settings``; until then callers pass it explicitly.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ServingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key_prefix: str = Field(
        "shopml", pattern=r"^[A-Za-z0-9_.-]+$", description="First part of every Redis key (one store, many tenants)."
    )
    versions_to_keep: int = Field(
        3, ge=2, description="Complete versions kept per dataset (the current one included), so rollback has a target."
    )
    retired_ttl_s: int = Field(
        7 * 24 * 3600,
        ge=60,
        description="Redis TTL given to a version when it stops being current: kept versions expire even if gc never runs.",
    )
    orphan_ttl_s: int = Field(
        3600,
        ge=10,
        description="Redis TTL of a version's keys while it is written, refreshed per batch: a killed publish cannot leave keys forever.",
    )
    lock_ttl_s: float = Field(
        120.0,
        gt=0,
        description="Lease of the per-dataset publish lock, renewed while publishing; a killed publisher's lock lapses after it.",
    )
    batch_size: int = Field(5_000, ge=1, description="Most keys per store write (one round trip, one transaction).")
    batch_bytes: int = Field(
        1_000_000,
        ge=1,
        description="Target value bytes per store write: multi-megabyte writes stall on socket buffers and are slower.",
    )
    read_batch_rows: int = Field(65_536, ge=1, description="Rows per Arrow batch read from Delta.")
    rows_per_pass: int = Field(
        4_000_000,
        ge=1,
        description="Most Delta rows grouped in memory at once; bigger partitions are published in key-range passes.",
    )
    payload_check_values: int = Field(
        2_000,
        ge=0,
        description="Encoded values per key-range pass checked against the API's payload model before the flip "
        "(spread evenly; about 10 us each). Nulls in required columns are checked on every row regardless.",
    )
    float_digits: int = Field(6, ge=0, le=15, description="Decimals kept for scores and quantiles in served JSON.")
    max_dataset_age_s: float = Field(
        36 * 3600.0, gt=0, description="/healthz reports degraded when a dataset's generated_at is older than this."
    )
    default_k: int = Field(10, ge=1, description="Recommendations returned when the request does not say k.")
    max_k: int = Field(100, ge=1, description="Largest k a request may ask for (422 above).")
    socket_timeout_s: float = Field(2.0, gt=0, description="Redis read/write timeout of publishing and the CLI.")
    api_timeout_s: float = Field(
        0.2,
        gt=0,
        description="Redis connect and read timeout of the read API: a hung store costs a request this long.",
    )
    api_breaker_open_s: float = Field(
        5.0,
        ge=0,
        description="After the store fails a read, the API answers 503 at once for this long, then probes it again.",
    )
    api_allowed_hosts: tuple[str, ...] = Field(
        ("localhost", "127.0.0.1"),
        min_length=1,
        description="Host headers the read API answers (others get 400), so a web page cannot reach a local API "
        "through DNS rebinding; add the name the storefront calls it by (docker-compose adds `api`).",
    )
    api_max_header_bytes: int = Field(
        16_384,
        ge=1_024,
        description="Largest request head (all header names and values) the read API answers; larger gets 431.",
    )
    connect_timeout_s: float = Field(2.0, gt=0, description="Redis connect timeout.")
    max_connections: int = Field(64, ge=1, description="Redis connection pool size per process.")
    sqlite_busy_timeout_s: float = Field(5.0, ge=0, description="How long SQLite waits for another writer's lock.")
