"""Publish scored Delta outputs to the serving store: atomic, versioned, idempotent by content.

One publish of one dataset, identical on Redis and SQLite:

1. Take the dataset's publish lock, a lease renewed while writing (a killed publisher's lease lapses).
2. Remove orphans: under the lock, any version still ``writing`` was left by a publisher that died.
3. Forward only: when the current version serves a later scored date (a backfill of a past day), the
   publish is skipped with that reason unless forced; the tables are rebuilt, serving does not go back.
4. Rerun check: when the store already holds a complete, un-overlaid version of the same scored date,
   encode the partition without writing and compare checksums. Identical content reuses that version
   (made current again if needed): a rerun of a night publishes the same version, never a duplicate.
5. Otherwise write a new version ``<scored_date>-<hash of run_id>`` (``-2``, ``-3``… when a rerun of
   the same run id brought new content). Stream the ``scored_date`` partition from Delta in key-range passes (at most ``rows_per_pass`` rows
   in memory), encode one JSON value per entity and write them in pipelined batches. Datasets sharing a table
   read only their rows of it (``DatasetSpec.row_filter``: one list of ``gold.recommendations`` each).
6. Verify the store holds exactly the keys written, then store the metadata and flip the pointer in
   one atomic step. Until then readers keep getting the previous version, whatever fails.
7. Garbage-collect: keep the newest ``versions_to_keep`` complete versions (and the current one).
8. Append one row to ``ops.publish_audit`` (a forced publish as ``forced:<triggered_by>``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from itertools import pairwise
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from serving.datasets import DATASETS, DatasetSpec, dataset_spec
from serving.encoding import encode_entities, encode_payload, payload_faults, required_columns
from serving.store import ServingStore, ServingStoreError, VersionInfo, open_store, utc_now
from shopml import catalog
from shopml.catalog import OPS_PUBLISH_AUDIT
from shopml.config.serving import ServingConfig
from shopml.errors import PermanentError, Skipped
from shopml.lake import Lake
from shopml.settings import Settings, get_settings

log = logging.getLogger(__name__)

_SAMPLES_PER_PASS = 1_000


class PublishError(PermanentError, ServingStoreError):
    """A publish or rollback that must not go ahead (no input, failed verification, nothing to roll back to)."""


class PublishConflictError(ServingStoreError):
    """Another publish of the same dataset holds the lock: worth a retry once it is done."""


@dataclass(frozen=True)
class PublishResult:
    dataset: str
    version: str
    key_count: int
    checksum: str
    duration_s: float
    reused: bool
    previous_version: str | None
    removed_versions: tuple[str, ...]


# ---- pure helpers ---------------------------------------------------------------------------------


def version_id(run_date: date, run_id: str) -> str:
    """The id a run's new version of ``run_date`` gets: readable date first, then a short run hash."""
    return f"{run_date:%Y%m%d}-{hashlib.blake2b(run_id.encode(), digest_size=4).hexdigest()}"


def plan_key_ranges(sample: Sequence[str], passes: int) -> list[tuple[str | None, str | None]]:
    """Split the key space into about ``passes`` half-open ranges ``[lo, hi)`` of similar row counts.

    Boundaries are quantiles of a sample of the entity column, so each pass
    holds about ``rows / passes`` rows and never splits an entity.
    """
    ordered = sorted(sample)
    bounds: list[str] = []
    for i in range(1, passes):
        value = ordered[i * len(ordered) // passes] if ordered else None
        if value is not None and (not bounds or value > bounds[-1]):
            bounds.append(value)
    edges: list[str | None] = [None, *bounds, None]
    return list(pairwise(edges))


def keep_versions(versions: Sequence[VersionInfo], current: str | None, keep: int) -> list[VersionInfo]:
    """Versions gc may delete: all but the ``keep`` newest complete ones and the current one."""
    complete = sorted(
        (v for v in versions if v.status == "complete"),
        key=lambda v: v.published_at or datetime.min.replace(tzinfo=UTC),
        reverse=True,
    )
    kept = {v.version for v in complete[:keep]} | ({current} if current else set())
    return [v for v in versions if v.version not in kept and v.status != "writing"]


def previous_version(versions: Sequence[VersionInfo], current: str) -> VersionInfo | None:
    """The newest complete version published before the current one (the rollback target)."""
    by_name = {v.version: v for v in versions}
    now = by_name.get(current)
    if now is None or now.published_at is None:
        return None
    older = [
        v
        for v in versions
        if v.status == "complete" and v.version != current and v.published_at and v.published_at < now.published_at
    ]
    return max(older, key=lambda v: v.published_at, default=None)


def _keys_per_batch(encoded: pa.Table, config: ServingConfig) -> int:
    """Keys per store write: ``batch_bytes`` of values on average, at most ``batch_size`` keys."""
    mean_bytes = max(1, encoded["payload"].nbytes // max(1, encoded.num_rows))
    return max(1, min(config.batch_size, config.batch_bytes // mean_bytes))


def _update_digest(digest: Any, encoded: pa.Table) -> None:
    """Feed ``entity NUL payload NUL`` of every key to the checksum, straight from Arrow buffers."""
    empty, nul = pa.scalar(b"", pa.large_binary()), pa.scalar(b"\0", pa.large_binary())
    framed = pc.binary_join_element_wise(encoded["entity"].cast(pa.large_binary()), encoded["payload"], empty, nul)
    for chunk in framed.chunks:
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64)[chunk.offset : chunk.offset + len(chunk) + 1]
        digest.update(memoryview(chunk.buffers()[2])[offsets[0] : offsets[-1]])


# ---- store session and lock ---------------------------------------------------------------------


@contextmanager
def _open(
    settings: Settings | None, config: ServingConfig | None
) -> Iterator[tuple[Settings, ServingConfig, ServingStore]]:
    settings = settings or get_settings()
    config = config or settings.serving_store
    store = open_store(settings.serving, config)
    try:
        yield settings, config, store
    finally:
        store.close()


class _Lease:
    """The per-dataset publish lock, renewed while a publish runs."""

    def __init__(self, store: ServingStore, dataset: str, ttl_s: float) -> None:
        self.store, self.dataset, self.ttl_s = store, dataset, ttl_s
        self.token = uuid.uuid4().hex
        self._renewed = time.monotonic()

    def renew_if_due(self) -> None:
        if time.monotonic() - self._renewed < self.ttl_s / 3:
            return
        if not self.store.renew_lock(self.dataset, self.token, self.ttl_s):
            raise PublishError(
                f"lost the publish lock of {self.dataset}: the lease ({self.ttl_s}s) lapsed while writing"
            )
        self._renewed = time.monotonic()


@contextmanager
def _publish_lock(store: ServingStore, dataset: str, config: ServingConfig) -> Iterator[_Lease]:
    lease = _Lease(store, dataset, config.lock_ttl_s)
    if not store.acquire_lock(dataset, lease.token, config.lock_ttl_s):
        raise PublishConflictError(
            f"another publish of {dataset} holds the lock on {store.url}; retry later "
            f"(a dead publisher's lock lapses within {config.lock_ttl_s}s)"
        )
    try:
        yield lease
    finally:
        try:
            store.release_lock(dataset, lease.token)
        except ServingStoreError as exc:
            log.warning("could not release the publish lock of %s (it lapses by itself): %s", dataset, exc)


def _remove_orphans(store: ServingStore, dataset: str) -> list[str]:
    """Under the publish lock every ``writing`` version is an orphan of a killed publish."""
    removed = []
    for info in store.list_versions(dataset):
        if info.status in ("writing", "expired"):
            if info.status == "writing":
                log.warning("removing orphaned partial version %s of %s (run %s)", info.version, dataset, info.run_id)
            store.delete_version(dataset, info.version)
            removed.append(info.version)
    return removed


def _collect_garbage(store: ServingStore, dataset: str, config: ServingConfig) -> list[str]:
    doomed = keep_versions(store.list_versions(dataset), store.current_version(dataset), config.versions_to_keep)
    for info in doomed:
        store.delete_version(dataset, info.version)
    if doomed:
        log.info("gc removed %s version(s) of %s: %s", len(doomed), dataset, [v.version for v in doomed])
    return [v.version for v in doomed]


# ---- streaming Delta -> store --------------------------------------------------------------------


def _partition_filter(run_date: date) -> pc.Expression:
    return pc.field("scored_date") == pa.scalar(run_date, pa.date32())


def row_selection(spec: DatasetSpec, table_columns: Sequence[str]) -> pc.Expression | None:
    """The filter picking the dataset's rows out of its table (None: every row).

    Raises ``Skipped`` when the table predates the filter's column and so holds none of them.
    """
    rows = spec.row_filter
    if rows is None:
        return None
    if rows.column not in table_columns:
        if rows.takes_absent:
            return None
        raise Skipped(
            f"nothing to publish for {spec.name}: {spec.table} has no {rows.column} column "
            f"(written before it had {rows.value} rows)"
        )
    if not rows.takes_absent:
        return pc.field(rows.column) == rows.value
    # Not ``is_null()``: delta-rs describes files older than the column with null min/max statistics,
    # and Arrow then prunes them for ``is_null`` (never for coalesce).
    return pc.coalesce(pc.field(rows.column), pa.scalar(rows.absent_means)) == rows.value


def _served_rows(lake: Lake, spec: DatasetSpec, run_date: date) -> pc.Expression:
    """The rows of the ``run_date`` partition the dataset serves."""
    selection = row_selection(spec, lake.arrow_dataset(spec.table).schema.names)
    partition = _partition_filter(run_date)
    return partition if selection is None else partition & selection


def _check_listed(lake: Lake, spec: DatasetSpec, run_date: date) -> None:
    """Raise ``Skipped`` when the table holds none of a filtered dataset's rows for a night it scored.

    Either the table was written before the filter's column existed, or nobody has such a list that
    night (no buy-again lists in a shop where nobody has bought yet). The main rows are never optional:
    without them the publish fails as an unfiltered one does.
    """
    where = _served_rows(lake, spec, run_date)
    rows = spec.row_filter
    if rows is None or rows.takes_absent or lake.read_arrow(spec.table, columns=[], filter=where).num_rows:
        return
    if lake.read_arrow(spec.table, columns=[], filter=_partition_filter(run_date)).num_rows:
        raise Skipped(
            f"nothing to publish for {spec.name}: {spec.table} has no {rows.column} = {rows.value} rows "
            f"for scored_date {run_date}"
        )


def _range_filter(spec: DatasetSpec, where: pc.Expression, lo: str | None, hi: str | None) -> pc.Expression:
    expression = where & pc.field(spec.entity).is_valid()
    if lo is not None:
        expression &= pc.field(spec.entity) >= lo
    if hi is not None:
        expression &= pc.field(spec.entity) < hi
    return expression


def _sample_entities(
    lake: Lake, spec: DatasetSpec, where: pc.Expression, rows: int, passes: int, batch: int
) -> list[str]:
    stride = max(1, rows // (passes * _SAMPLES_PER_PASS))
    sample: list[str] = []
    for chunk in lake.iter_batches(
        spec.table, columns=[spec.entity], filter=_range_filter(spec, where, None, None), batch_size=batch
    ):
        sample += chunk.column(0).take(np.arange(0, chunk.num_rows, stride)).to_pylist()
    return sample


@dataclass
class _Written:
    key_count: int = 0
    model_versions: frozenset[str] = frozenset()
    generated_at: datetime | None = None
    has_fallback: bool = False
    digest: Any = field(default_factory=hashlib.sha256)


def _encoded_passes(
    lake: Lake, spec: DatasetSpec, run_date: date, config: ServingConfig, lease: _Lease, written: _Written
) -> Iterator[pa.Table]:
    """The dataset's rows of the partition as encoded (entity, payload) tables, one per key-range pass, in key order.

    Counts keys and gathers provenance into ``written`` as it goes.
    """
    where = _served_rows(lake, spec, run_date)
    rows = lake.read_arrow(spec.table, columns=[], filter=where).num_rows
    if rows == 0:
        raise PublishError(f"{spec.table} has no rows for scored_date {run_date}: nothing to publish")
    passes = math.ceil(rows / config.rows_per_pass)
    ranges = (
        plan_key_ranges(_sample_entities(lake, spec, where, rows, passes, config.read_batch_rows), passes)
        if passes > 1
        else [(None, None)]
    )
    log.info("reading %s rows of %s for %s in %s pass(es)", rows, spec.table, run_date, len(ranges))
    for lo, hi in ranges:
        lease.renew_if_due()
        batches = list(
            lake.iter_batches(
                spec.table,
                columns=spec.source_columns,
                filter=_range_filter(spec, where, lo, hi),
                batch_size=config.read_batch_rows,
            )
        )
        if not batches:
            continue
        # Files written in key order come back in any order: putting their batches back in key order
        # lets the encoder skip sorting (any order is still correct, only slower).
        batches.sort(key=lambda batch: batch.column(spec.entity)[0].as_py() if batch.num_rows else "")
        rows_in_pass = pa.Table.from_batches(batches)
        del batches
        _check_required(rows_in_pass, spec, run_date)
        latest = pc.max(rows_in_pass["generated_at"]).as_py()
        if latest is not None:
            latest = latest if latest.tzinfo else latest.replace(tzinfo=UTC)
            written.generated_at = max(filter(None, [written.generated_at, latest]))
        written.model_versions |= {v for v in pc.unique(rows_in_pass["model_version"]).to_pylist() if v}
        encoded = encode_entities(rows_in_pass, spec, config.float_digits)
        del rows_in_pass
        faults = payload_faults(spec, encoded, config.payload_check_values)
        if faults:
            raise PublishError(
                f"{spec.name} values for {run_date} do not fit the payload the API serves "
                f"({'; '.join(faults)}); the pointer was not flipped"
            )
        _update_digest(written.digest, encoded)
        written.key_count += encoded.num_rows
        if spec.fallback_entity:
            written.has_fallback |= pc.any(pc.equal(encoded["entity"], spec.fallback_entity)).as_py() or False
        yield encoded


def _check_required(rows: pa.Table, spec: DatasetSpec, run_date: date) -> None:
    """Refuse rows whose nulls would make values the API cannot serve, naming the column and the count."""
    for column in required_columns(spec):
        nulls = rows[column].null_count
        if nulls:
            raise PublishError(
                f"{spec.table} for {run_date} has {nulls} row(s) with no {column}, which every {spec.name} "
                "value needs; the pointer was not flipped"
            )


def _write_entries(
    store: ServingStore,
    lake: Lake,
    spec: DatasetSpec,
    version: str,
    run_date: date,
    config: ServingConfig,
    lease: _Lease,
) -> _Written:
    written = _Written()
    for encoded in _encoded_passes(lake, spec, run_date, config, lease, written):
        started = time.monotonic()
        per_batch = _keys_per_batch(encoded, config)
        for start in range(0, encoded.num_rows, per_batch):
            store.write_batch(spec.name, version, encoded.slice(start, per_batch))
            lease.renew_if_due()
        log.info("wrote %s keys in %.1fs", encoded.num_rows, time.monotonic() - started)
    return written


def _same_content(
    store: ServingStore, lake: Lake, spec: DatasetSpec, run_date: date, config: ServingConfig, lease: _Lease
) -> VersionInfo | None:
    """A complete, intact version of ``run_date`` holding exactly what the partition would publish now.

    Its ``generated_at`` moves up to the partition's newest score time: a rerun that confirms the
    content makes the version fresh again for ``/healthz``. Versions changed by incremental overlays
    since their publish never match: a nightly publish supersedes overlays.
    """
    same_date = [
        v
        for v in store.list_versions(spec.name)
        if v.status == "complete" and v.scored_date == run_date.isoformat() and v.refreshed_at is None
    ]
    if not same_date:
        return None
    content = _Written()
    for _ in _encoded_passes(lake, spec, run_date, config, lease, content):
        pass
    checksum = content.digest.hexdigest()
    for info in reversed(same_date):
        if (info.checksum, info.key_count) == (checksum, content.key_count) and store.count_entries(
            spec.name, info.version
        ) == info.key_count:
            return replace(
                info, generated_at=max(filter(None, [info.generated_at, content.generated_at]), default=None)
            )
    return None


def _later_current(store: ServingStore, dataset: str, current: str | None, run_date: date) -> VersionInfo | None:
    """The current version's info when it serves a scored date after ``run_date``, else None."""
    info = store.get_version(dataset, current) if current else None
    return info if info is not None and info.scored_date > run_date.isoformat() else None


def _free_version_id(store: ServingStore, dataset: str, run_date: date, run_id: str) -> str:
    """``<scored_date>-<hash of run_id>``, suffixed ``-2``, ``-3``… while the store already has that id."""
    base = version_id(run_date, run_id)
    taken = {v.version for v in store.list_versions(dataset)}
    return next(v for n in range(1, len(taken) + 2) if (v := base if n == 1 else f"{base}-{n}") not in taken)


def _write_version(
    store: ServingStore,
    lake: Lake,
    spec: DatasetSpec,
    draft: VersionInfo,
    run_date: date,
    config: ServingConfig,
    lease: _Lease,
) -> VersionInfo:
    store.begin_version(draft)
    try:
        written = _write_entries(store, lake, spec, draft.version, run_date, config, lease)
        stored = store.count_entries(spec.name, draft.version)
        if written.key_count == 0 or stored != written.key_count:
            raise PublishError(
                f"verification of {spec.name} version {draft.version} failed: {written.key_count} keys written, "
                f"{stored} in the store; the pointer was not flipped"
            )
        if spec.fallback_entity and not written.has_fallback:
            log.warning("%s has no %r entry: unknown ids will get 404", spec.name, spec.fallback_entity)
    except BaseException:
        _discard(store, spec.name, draft.version)
        raise
    return replace(
        draft,
        status="complete",
        published_at=utc_now(),
        key_count=written.key_count,
        checksum=written.digest.hexdigest(),
        model_version=",".join(sorted(written.model_versions)),
        generated_at=written.generated_at,
    )


def _discard(store: ServingStore, dataset: str, version: str) -> None:
    try:
        store.delete_version(dataset, version)
    except ServingStoreError as exc:
        log.warning("left partial version %s of %s for the next publish to remove: %s", version, dataset, exc)


def _append_audit(
    lake: Lake, info: VersionInfo, duration_s: float, triggered_by: str, run_id: str, at: datetime
) -> None:
    row = {
        "dataset": [info.dataset],
        "version": [info.version],
        "key_count": [info.key_count],
        "checksum": [info.checksum],
        "duration_s": [duration_s],
        "triggered_by": [triggered_by],
        "run_id": [run_id],
        "published_at": [at],
    }
    lake.write_arrow(
        pa.table(row, schema=catalog.spec(OPS_PUBLISH_AUDIT).arrow_schema()), OPS_PUBLISH_AUDIT, mode="append"
    )


# ---- public entry points (CLI and Airflow tasks) -------------------------------------------------


def publish_dataset(
    dataset: str,
    run_date: date,
    run_id: str,
    settings: Settings | None = None,
    triggered_by: str = "manual",
    config: ServingConfig | None = None,
    force: bool = False,
) -> PublishResult:
    """Publish one scored partition as a new current version, or re-point to the version that already holds it.

    Raises ``StoreUnavailableError`` when the store is down (retry), ``PublishConflictError`` when another
    publish of the dataset runs, ``PublishError`` when there is nothing valid to publish, ``Skipped`` when
    the shop lacks the optional feed the dataset is built from, the table holds none of a filtered
    dataset's rows (a list written only by newer scorers), or serving already holds a later scored date
    and ``force`` is off. On any error the previously current version keeps serving.
    """
    spec = dataset_spec(dataset)
    started = time.monotonic()
    source = Lake(settings)
    if spec.requires_feed and not any(map(source.exists, (spec.requires_feed, spec.table))):
        raise Skipped(f"nothing to publish for {dataset}: the shop has no {spec.requires_feed.split('.')[-1]} feed")
    if spec.row_filter is not None and source.exists(spec.table):
        # Decided before taking the lock: a skipped dataset leaves the store untouched.
        _check_listed(source, spec, run_date)
    with _open(settings, config) as (settings, config, store), _publish_lock(store, dataset, config) as lease:
        lake = Lake(settings)
        orphans = _remove_orphans(store, dataset)
        previous = store.current_version(dataset)
        later = _later_current(store, dataset, previous, run_date)
        if later is not None:
            if not force:
                raise Skipped(
                    f"not publishing {dataset} for {run_date}: serving holds the later scored date "
                    f"{later.scored_date} (version {later.version}), and a backfill does not take serving back "
                    "in time (publish with --force to do so)"
                )
            log.warning("%s: forced back from scored date %s to %s", dataset, later.scored_date, run_date)
            triggered_by = f"forced:{triggered_by}"
        existing = _same_content(store, lake, spec, run_date, config, lease)
        reused = existing is not None
        if existing is not None:
            info = existing
            if previous != info.version:
                log.info("%s version %s already holds this content; making it current again", dataset, info.version)
            store.activate_version(info, previous, lease.token)
        else:
            draft = VersionInfo(
                dataset=dataset,
                version=_free_version_id(store, dataset, run_date, run_id),
                status="writing",
                run_id=run_id,
                scored_date=run_date.isoformat(),
                triggered_by=triggered_by,
                created_at=utc_now(),
            )
            info = _write_version(store, lake, spec, draft, run_date, config, lease)
            store.activate_version(info, previous, lease.token)
        removed = _collect_garbage(store, dataset, config)
        duration = time.monotonic() - started
        _append_audit(lake, info, duration, triggered_by, run_id, utc_now())
    log.info(
        "%s %s version %s: %s keys in %.1fs (previous %s)",
        "re-published" if reused else "published",
        dataset,
        info.version,
        info.key_count,
        duration,
        previous,
    )
    return PublishResult(
        dataset=dataset,
        version=info.version,
        key_count=info.key_count,
        checksum=info.checksum,
        duration_s=duration,
        reused=reused,
        previous_version=previous,
        removed_versions=tuple(orphans + removed),
    )


def rollback_dataset(
    dataset: str, settings: Settings | None = None, triggered_by: str = "manual", config: ServingConfig | None = None
) -> str:
    """Make the version published before the current one current again; returns it. Audited like a publish.

    The version rolled back from is revoked: a later rollback never lands on it, gc removes it first.
    """
    dataset_spec(dataset)
    started = time.monotonic()
    with _open(settings, config) as (settings, config, store), _publish_lock(store, dataset, config) as lease:
        current = store.current_version(dataset)
        if current is None:
            raise PublishError(f"nothing is published for {dataset}: no version to roll back from")
        target = previous_version(store.list_versions(dataset), current)
        if target is None or store.count_entries(dataset, target.version) != target.key_count:
            raise PublishError(f"{dataset} has no intact version older than {current} to roll back to")
        store.activate_version(target, current, lease.token, revoke_previous=True)
        _append_audit(
            Lake(settings),
            target,
            time.monotonic() - started,
            f"rollback:{triggered_by}",
            target.run_id,
            utc_now(),
        )
    log.warning("rolled %s back from %s to %s", dataset, current, target.version)
    return target.version


def gc_datasets(settings: Settings | None = None, config: ServingConfig | None = None) -> dict[str, list[str]]:
    """Remove orphaned and surplus versions of every dataset; returns what was removed per dataset.

    Takes each dataset's publish lock, so it fails with ``PublishConflictError`` while a publish runs.
    """
    removed: dict[str, list[str]] = {}
    with _open(settings, config) as (_, config, store):
        for dataset in DATASETS:
            with _publish_lock(store, dataset, config):
                removed[dataset] = _remove_orphans(store, dataset) + _collect_garbage(store, dataset, config)
    return removed


def dataset_versions(
    dataset: str, settings: Settings | None = None, config: ServingConfig | None = None
) -> tuple[str | None, list[VersionInfo]]:
    """The current version of a dataset and every version the store holds, oldest first."""
    dataset_spec(dataset)
    with _open(settings, config) as (_, _, store):
        return store.current_version(dataset), store.list_versions(dataset)


def overlay_keys(
    dataset: str,
    entries: Mapping[str, Any],
    based_on_version: str,
    settings: Settings | None = None,
    config: ServingConfig | None = None,
) -> bool:
    """Write changed values into the current version, batch by batch, while it is still ``based_on_version``.

    Each batch is atomic and is refused (``False``, nothing written) once a newer publish or a rollback
    has replaced ``based_on_version``: the incremental refresh then has nothing left to do.
    """
    dataset_spec(dataset)
    encoded = [(entity, encode_payload(dataset, payload)) for entity, payload in entries.items()]
    with _open(settings, config) as (_, config, store):
        if store.current_version(dataset) != based_on_version:
            log.info("overlay on %s refused: %s is no longer current", dataset, based_on_version)
            return False
        for start in range(0, len(encoded), config.batch_size):
            chunk = encoded[start : start + config.batch_size]
            entities, payloads = [e for e, _ in chunk], [p for _, p in chunk]
            if not store.overlay(dataset, based_on_version, entities, payloads, utc_now()):
                log.info("overlay on %s stopped: %s was superseded mid-way", dataset, based_on_version)
                return False
    log.info("overlaid %s values on %s version %s", len(encoded), dataset, based_on_version)
    return True
