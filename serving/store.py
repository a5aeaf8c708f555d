"""The serving store: versioned per-entity values behind one small interface, in Redis or SQLite.

``open_store(url)`` picks the backend from the URL: ``redis://`` / ``rediss://``
(production; password, database and TLS through the URL) or ``sqlite:///path``
(the embedded default under ``./var``; ``sqlite:////abs/path`` for an absolute
path). Both offer the same primitives; the publishing protocol built on them
(lock, orphan cleanup, write, verify, flip, gc) lives in ``publish.py`` and is
the same for both. See ``serving`` for the key design.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shopml.config.serving import ServingConfig

log = logging.getLogger(__name__)

VersionStatus = Literal["writing", "complete", "expired", "revoked"]


class ServingStoreError(RuntimeError):
    """A store operation failed (the message names the store, with any password removed)."""


class StoreUnavailableError(ServingStoreError):
    """The store cannot be reached or written right now (down, timed out, locked): worth a retry."""


class LockLostError(ServingStoreError):
    """The publish lock lapsed and another publisher may hold it: the version was not made current."""


@dataclass(frozen=True)
class VersionInfo:
    """Metadata of one published (or being published) version of a dataset."""

    dataset: str
    version: str
    status: VersionStatus
    run_id: str = ""
    scored_date: str = ""
    triggered_by: str = ""
    created_at: datetime | None = None
    published_at: datetime | None = None
    model_version: str = ""
    generated_at: datetime | None = None
    key_count: int = 0
    checksum: str = ""
    refreshed_at: datetime | None = None

    def to_fields(self) -> dict[str, str]:
        """Flat string fields (a Redis hash, a SQLite JSON column)."""
        out = {}
        for name, value in asdict(self).items():
            out[name] = value.isoformat() if isinstance(value, datetime) else "" if value is None else str(value)
        return out

    @classmethod
    def from_fields(cls, values: Mapping[str, str]) -> VersionInfo:
        parsed: dict[str, Any] = {}
        for field in fields(cls):
            raw = values.get(field.name, "")
            if field.name.endswith("_at"):
                parsed[field.name] = datetime.fromisoformat(raw) if raw else None
            elif field.name == "key_count":
                parsed[field.name] = int(raw or 0)
            else:
                parsed[field.name] = raw
        return cls(**parsed)


@dataclass(frozen=True)
class Lookup:
    """One read: the value of an entity (or of the fallback entity) in the current version, with provenance."""

    version: str
    payload: bytes | None
    fallback: bool
    model_version: str
    run_id: str
    generated_at: datetime | None


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def utc_now() -> datetime:
    return datetime.now(UTC)


class ServingStore(ABC):
    """Versioned key-value storage of serving datasets; all values of a version are invisible until it is current."""

    def __init__(self, url: str, config: ServingConfig) -> None:
        self.url = redact_url(url)
        self.config = config

    @abstractmethod
    def ping(self) -> None: ...

    @abstractmethod
    def current_version(self, dataset: str) -> str | None: ...

    @abstractmethod
    def get_version(self, dataset: str, version: str) -> VersionInfo | None: ...

    @abstractmethod
    def list_versions(self, dataset: str) -> list[VersionInfo]:
        """Every version the store knows of, oldest first (complete, still writing, or expired in Redis)."""

    @abstractmethod
    def begin_version(self, info: VersionInfo) -> None:
        """Register a version in ``writing`` state with no values (an orphan if its writer dies)."""

    @abstractmethod
    def write_batch(self, dataset: str, version: str, batch: pa.Table) -> None:
        """Write one batch of values (columns ``entity``, ``payload``) into a version, atomically."""

    @abstractmethod
    def count_entries(self, dataset: str, version: str) -> int: ...

    @abstractmethod
    def activate_version(
        self, info: VersionInfo, previous: str | None, lock_token: str, revoke_previous: bool = False
    ) -> None:
        """Store ``info`` (complete) and make it current in one atomic step; ``previous`` is retired
        (``revoke_previous``, a rollback: marked ``revoked``, never served or rolled back to again).

        The step checks, atomically with the flip, that the publish lock is still ``lock_token``'s:
        a publisher whose lease lapsed mid-write raises ``LockLostError`` and changes nothing.
        """

    @abstractmethod
    def delete_version(self, dataset: str, version: str) -> None: ...

    @abstractmethod
    def erase_entity(self, dataset: str, entity: str) -> int:
        """Remove ``entity``'s value from every version of ``dataset`` (an erasure); returns values removed."""

    @abstractmethod
    def lookup(self, dataset: str, entity: str, fallback_entity: str | None = None) -> Lookup | None:
        """Read an entity from the current version in one round trip; None when nothing is published."""

    @abstractmethod
    def overlay(
        self, dataset: str, based_on: str, entities: Sequence[str], payloads: Sequence[bytes], refreshed_at: datetime
    ) -> bool:
        """Write values into version ``based_on`` atomically, only while it is still current."""

    @abstractmethod
    def acquire_lock(self, dataset: str, token: str, ttl_s: float) -> bool: ...

    @abstractmethod
    def renew_lock(self, dataset: str, token: str, ttl_s: float) -> bool: ...

    @abstractmethod
    def release_lock(self, dataset: str, token: str) -> None: ...

    @abstractmethod
    def close(self) -> None: ...


def open_store(url: str, config: ServingConfig | None = None) -> ServingStore:
    """The store a URL names: ``redis://``, ``rediss://`` or ``sqlite:///path``."""
    config = config or ServingConfig()
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss"):
        return RedisStore(url, config)
    if scheme == "sqlite":
        return SqliteStore(url, config)
    raise ValueError(f"unsupported serving store URL {redact_url(url)!r}: use redis://, rediss:// or sqlite:///path")


# ---- Redis ------------------------------------------------------------------------------------------

# Pointer, value and provenance are read in one atomic script: a reader can never pair the pointer
# of one version with a value of another, even if gc deletes the old version between two calls.
_LOOKUP_LUA = """
local version = redis.call('GET', KEYS[1])
if not version then return false end
local data = ARGV[1] .. 'data:' .. version
local value = redis.call('HGET', data, ARGV[2])
local fallback = 0
if not value and ARGV[3] ~= '' then
  value = redis.call('HGET', data, ARGV[3])
  fallback = 1
end
local meta = redis.call('HMGET', ARGV[1] .. 'meta:' .. version, 'model_version', 'run_id', 'generated_at')
return {version, value, fallback, meta[1], meta[2], meta[3]}
"""

# Check-and-write in one script: the values land in the version only while it is current.
_OVERLAY_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local data = ARGV[2] .. 'data:' .. ARGV[1]
for i = 4, #ARGV, 2 do redis.call('HSET', data, ARGV[i], ARGV[i + 1]) end
redis.call('HSET', ARGV[2] .. 'meta:' .. ARGV[1], 'refreshed_at', ARGV[3], 'key_count', redis.call('HLEN', data))
return 1
"""

_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisStore(ServingStore):
    """Redis layout (``{dataset}`` is a hash tag: a dataset's keys share one cluster slot)::

    <prefix>:{<dataset>}:current             string  current version id
    <prefix>:{<dataset>}:versions            zset    version id -> created_at (epoch s)
    <prefix>:{<dataset>}:meta:<version>      hash    VersionInfo fields
    <prefix>:{<dataset>}:data:<version>      hash    entity -> JSON value
    <prefix>:{<dataset>}:lock                string  publish lock token (PX lease)
    """

    def __init__(self, url: str, config: ServingConfig) -> None:
        import redis

        super().__init__(url, config)
        self._redis = redis.Redis.from_url(
            url,
            socket_timeout=config.socket_timeout_s,
            socket_connect_timeout=config.connect_timeout_s,
            max_connections=config.max_connections,
            health_check_interval=30,
        )
        self._lookup = self._redis.register_script(_LOOKUP_LUA)
        self._overlay = self._redis.register_script(_OVERLAY_LUA)
        self._renew = self._redis.register_script(_RENEW_LUA)
        self._release = self._redis.register_script(_RELEASE_LUA)

    def key(self, dataset: str, *parts: str) -> str:
        return ":".join([self.config.key_prefix, f"{{{dataset}}}", *parts])

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        import redis

        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailableError(f"Redis serving store {self.url} unreachable while {action}: {exc}") from exc
        except redis.RedisError as exc:
            raise ServingStoreError(f"Redis serving store {self.url} failed while {action}: {exc}") from exc

    def ping(self) -> None:
        with self._errors("pinging"):
            self._redis.ping()

    def current_version(self, dataset: str) -> str | None:
        with self._errors(f"reading the current version of {dataset}"):
            value = self._redis.get(self.key(dataset, "current"))
        return value.decode() if value else None

    def get_version(self, dataset: str, version: str) -> VersionInfo | None:
        with self._errors(f"reading version {version} of {dataset}"):
            values = self._redis.hgetall(self.key(dataset, "meta", version))
        return VersionInfo.from_fields(_decode(values)) if values else None

    def list_versions(self, dataset: str) -> list[VersionInfo]:
        with self._errors(f"listing versions of {dataset}"):
            versions = [v.decode() for v in self._redis.zrange(self.key(dataset, "versions"), 0, -1)]
            pipe = self._redis.pipeline(transaction=False)
            for version in versions:
                pipe.hgetall(self.key(dataset, "meta", version))
            metas = pipe.execute()
        return [
            VersionInfo.from_fields(_decode(meta)) if meta else VersionInfo(dataset, version, "expired")
            for version, meta in zip(versions, metas, strict=True)
        ]

    def begin_version(self, info: VersionInfo) -> None:
        meta, data = self.key(info.dataset, "meta", info.version), self.key(info.dataset, "data", info.version)
        with self._errors(f"starting version {info.version} of {info.dataset}"):
            pipe = self._redis.pipeline(transaction=True)
            pipe.unlink(meta, data)
            pipe.hset(meta, mapping=info.to_fields())
            pipe.expire(meta, self.config.orphan_ttl_s)
            pipe.zadd(self.key(info.dataset, "versions"), {info.version: (info.created_at or utc_now()).timestamp()})
            pipe.execute()

    def write_batch(self, dataset: str, version: str, batch: pa.Table) -> None:
        data, meta = self.key(dataset, "data", version), self.key(dataset, "meta", version)
        ttl = self.config.orphan_ttl_s
        with self._errors(f"writing {batch.num_rows} values of {dataset} version {version}"):
            connection = self._redis.connection_pool.get_connection()
            try:
                # One transaction per batch; the TTLs are renewed with every batch, so a version whose
                # writer died expires by itself.
                connection.send_packed_command(
                    [
                        *connection.pack_command("MULTI"),
                        *_resp_hset(data, batch),
                        *connection.pack_command("EXPIRE", data, ttl),
                        *connection.pack_command("EXPIRE", meta, ttl),
                        *connection.pack_command("EXEC"),
                    ]
                )
                _read_transaction(connection, queued=3)
            finally:
                self._redis.connection_pool.release(connection)

    def count_entries(self, dataset: str, version: str) -> int:
        with self._errors(f"counting values of {dataset} version {version}"):
            return int(self._redis.hlen(self.key(dataset, "data", version)))

    def activate_version(
        self, info: VersionInfo, previous: str | None, lock_token: str, revoke_previous: bool = False
    ) -> None:
        import redis

        dataset, version = info.dataset, info.version
        lock = self.key(dataset, "lock")
        with self._errors(f"making {version} the current version of {dataset}"), self._redis.pipeline() as pipe:
            pipe.watch(lock)  # the transaction fails if the lock changes before EXEC
            if pipe.get(lock) != lock_token.encode():
                raise LockLostError(f"the publish lock of {dataset} is no longer ours: {version} not made current")
            pipe.multi()
            pipe.hset(self.key(dataset, "meta", version), mapping=info.to_fields())
            pipe.persist(self.key(dataset, "meta", version))
            pipe.persist(self.key(dataset, "data", version))
            pipe.set(self.key(dataset, "current"), version)
            if previous and previous != version:
                # Only the current version lives without a TTL; retired ones expire even if gc never runs.
                pipe.expire(self.key(dataset, "meta", previous), self.config.retired_ttl_s)
                pipe.expire(self.key(dataset, "data", previous), self.config.retired_ttl_s)
                if revoke_previous:
                    pipe.hset(self.key(dataset, "meta", previous), "status", "revoked")
            try:
                pipe.execute()
            except redis.WatchError as exc:
                raise LockLostError(f"the publish lock of {dataset} changed hands: {version} not made current") from exc

    def delete_version(self, dataset: str, version: str) -> None:
        with self._errors(f"deleting version {version} of {dataset}"):
            pipe = self._redis.pipeline(transaction=True)
            pipe.unlink(self.key(dataset, "meta", version), self.key(dataset, "data", version))
            pipe.zrem(self.key(dataset, "versions"), version)
            pipe.execute()

    def erase_entity(self, dataset: str, entity: str) -> int:
        removed = 0
        with self._errors(f"erasing {entity!r} from {dataset}"):
            for version in self._redis.zrange(self.key(dataset, "versions"), 0, -1):
                version = version.decode()
                if self._redis.hdel(self.key(dataset, "data", version), entity):
                    self._redis.hincrby(self.key(dataset, "meta", version), "key_count", -1)
                    removed += 1
        return removed

    def lookup(self, dataset: str, entity: str, fallback_entity: str | None = None) -> Lookup | None:
        with self._errors(f"reading {dataset}"):
            reply = self._lookup(
                keys=[self.key(dataset, "current")], args=[self.key(dataset, ""), entity, fallback_entity or ""]
            )
        if reply is None:
            return None
        version, payload, fallback, model_version, run_id, generated_at = reply
        return Lookup(
            version=version.decode(),
            payload=payload,
            fallback=bool(fallback) and payload is not None,
            model_version=(model_version or b"").decode(),
            run_id=(run_id or b"").decode(),
            generated_at=datetime.fromisoformat(generated_at.decode()) if generated_at else None,
        )

    def overlay(
        self, dataset: str, based_on: str, entities: Sequence[str], payloads: Sequence[bytes], refreshed_at: datetime
    ) -> bool:
        args: list[Any] = [based_on, self.key(dataset, ""), refreshed_at.isoformat()]
        for entity, payload in zip(entities, payloads, strict=True):
            args += [entity, payload]
        with self._errors(f"overlaying {len(entities)} values on {dataset} version {based_on}"):
            return bool(self._overlay(keys=[self.key(dataset, "current")], args=args))

    def acquire_lock(self, dataset: str, token: str, ttl_s: float) -> bool:
        with self._errors(f"locking {dataset} for publishing"):
            return bool(self._redis.set(self.key(dataset, "lock"), token, nx=True, px=int(ttl_s * 1000)))

    def renew_lock(self, dataset: str, token: str, ttl_s: float) -> bool:
        with self._errors(f"renewing the publish lock of {dataset}"):
            return bool(self._renew(keys=[self.key(dataset, "lock")], args=[token, int(ttl_s * 1000)]))

    def release_lock(self, dataset: str, token: str) -> None:
        with self._errors(f"releasing the publish lock of {dataset}"):
            self._release(keys=[self.key(dataset, "lock")], args=[token])

    def close(self) -> None:
        self._redis.close()


def _decode(values: Mapping[bytes, bytes]) -> dict[str, str]:
    return {key.decode(): value.decode() for key, value in values.items()}


def _resp_hset(key: str, batch: pa.Table) -> list[bytes | memoryview]:
    """``HSET key entity payload ...`` in the Redis protocol, built column-wise.

    This is the bulk-loading route the Redis docs recommend (generate the protocol, as
    ``redis-cli --pipe`` does): packing 10k arguments per batch in Python would cost more than
    Redis takes to apply them.
    """
    binary = pa.large_binary()

    def text(value: str) -> pa.Scalar:
        return pa.scalar(value.encode(), binary)

    entities, payloads = batch["entity"].cast(binary), batch["payload"].cast(binary)
    framed = pc.binary_join_element_wise(
        text("$"),
        pc.binary_length(entities).cast(pa.large_string()).cast(binary),
        text("\r\n"),
        entities,
        text("\r\n$"),
        pc.binary_length(payloads).cast(pa.large_string()).cast(binary),
        text("\r\n"),
        payloads,
        text("\r\n"),
        text(""),
    )
    encoded_key = key.encode()
    parts: list[bytes | memoryview] = [
        f"*{2 + 2 * batch.num_rows}\r\n$4\r\nHSET\r\n${len(encoded_key)}\r\n".encode() + encoded_key + b"\r\n"
    ]
    for chunk in framed.chunks:
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64)[chunk.offset : chunk.offset + len(chunk) + 1]
        parts.append(memoryview(chunk.buffers()[2])[offsets[0] : offsets[-1]])
    return parts


def _read_transaction(connection: Any, queued: int) -> list[Any]:
    """Read the replies of MULTI, ``queued`` commands and EXEC, all of them, then raise the first error."""
    import redis

    replies: list[Any] = []
    for _ in range(queued + 2):
        try:
            replies.append(connection.read_response())
        except redis.ResponseError as exc:
            replies.append(exc)
    errors = [r for r in replies[:-1] if isinstance(r, Exception)]
    errors += [r for r in replies[-1] if isinstance(r, Exception)] if isinstance(replies[-1], list) else []
    if isinstance(replies[-1], Exception):
        errors.append(replies[-1])
    if errors:
        raise errors[0]
    return replies[-1]


# ---- SQLite -----------------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS serving_pointer (dataset TEXT PRIMARY KEY, version TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS serving_version (
    dataset TEXT NOT NULL, version TEXT NOT NULL, created_at REAL NOT NULL, meta TEXT NOT NULL,
    PRIMARY KEY (dataset, version)
);
CREATE TABLE IF NOT EXISTS serving_entry (
    dataset TEXT NOT NULL, version TEXT NOT NULL, entity TEXT NOT NULL, payload BLOB NOT NULL,
    PRIMARY KEY (dataset, version, entity)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS serving_lock (dataset TEXT PRIMARY KEY, token TEXT NOT NULL, expires_at REAL NOT NULL);
"""

# One statement reads pointer, provenance and value: SQLite runs it on one snapshot, so the value
# always belongs to the version the pointer named.
_LOOKUP_SQL = """
SELECT p.version, v.meta,
    (SELECT payload FROM serving_entry e WHERE e.dataset = p.dataset AND e.version = p.version AND e.entity = ?),
    (SELECT payload FROM serving_entry e WHERE e.dataset = p.dataset AND e.version = p.version AND e.entity = ?)
FROM serving_pointer p JOIN serving_version v ON v.dataset = p.dataset AND v.version = p.version
WHERE p.dataset = ?
"""


def _insert_entries(
    conn: sqlite3.Connection, dataset: str, version: str, entities: Sequence[str], payloads: Sequence[bytes]
) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO serving_entry (dataset, version, entity, payload) VALUES (?, ?, ?, ?)",
        ((dataset, version, entity, payload) for entity, payload in zip(entities, payloads, strict=True)),
    )


_UNAVAILABLE_HINTS = ("locked", "busy", "unable to open", "readonly", "disk i/o", "disk is full")


class SqliteStore(ServingStore):
    """SQLite layout: ``serving_pointer`` (dataset -> current version), ``serving_version`` (metadata JSON),
    ``serving_entry`` (dataset, version, entity -> JSON value; primary-key lookups only), ``serving_lock``.

    WAL mode lets the API read while a publish writes; each thread gets its own connection.
    """

    def __init__(self, url: str, config: ServingConfig) -> None:
        super().__init__(url, config)
        raw = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not raw:
            raise ValueError(f"SQLite serving URL must look like sqlite:///relative/path or sqlite:////abs/path: {url}")
        self.path = Path(raw)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        with self._errors("opening the database"):
            self._connect().executescript(_SCHEMA)

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            kind = (
                StoreUnavailableError
                if isinstance(exc, OSError) or any(hint in str(exc).lower() for hint in _UNAVAILABLE_HINTS)
                else ServingStoreError
            )
            raise kind(f"SQLite serving store {self.path} failed while {action}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self.config.sqlite_busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._guard:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        with self._errors(action):
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def ping(self) -> None:
        with self._errors("pinging"):
            self._connect().execute("SELECT 1 FROM serving_pointer LIMIT 1").fetchall()

    def current_version(self, dataset: str) -> str | None:
        with self._errors(f"reading the current version of {dataset}"):
            row = (
                self._connect().execute("SELECT version FROM serving_pointer WHERE dataset = ?", (dataset,)).fetchone()
            )
        return row[0] if row else None

    def get_version(self, dataset: str, version: str) -> VersionInfo | None:
        with self._errors(f"reading version {version} of {dataset}"):
            row = (
                self._connect()
                .execute("SELECT meta FROM serving_version WHERE dataset = ? AND version = ?", (dataset, version))
                .fetchone()
            )
        return VersionInfo.from_fields(json.loads(row[0])) if row else None

    def list_versions(self, dataset: str) -> list[VersionInfo]:
        with self._errors(f"listing versions of {dataset}"):
            rows = (
                self._connect()
                .execute("SELECT meta FROM serving_version WHERE dataset = ? ORDER BY created_at, version", (dataset,))
                .fetchall()
            )
        return [VersionInfo.from_fields(json.loads(row[0])) for row in rows]

    def begin_version(self, info: VersionInfo) -> None:
        with self._transaction(f"starting version {info.version} of {info.dataset}") as conn:
            conn.execute("DELETE FROM serving_entry WHERE dataset = ? AND version = ?", (info.dataset, info.version))
            conn.execute(
                "INSERT OR REPLACE INTO serving_version (dataset, version, created_at, meta) VALUES (?, ?, ?, ?)",
                (info.dataset, info.version, (info.created_at or utc_now()).timestamp(), json.dumps(info.to_fields())),
            )

    def write_batch(self, dataset: str, version: str, batch: pa.Table) -> None:
        with self._transaction(f"writing {batch.num_rows} values of {dataset} version {version}") as conn:
            _insert_entries(conn, dataset, version, batch["entity"].to_pylist(), batch["payload"].to_pylist())

    def count_entries(self, dataset: str, version: str) -> int:
        with self._errors(f"counting values of {dataset} version {version}"):
            return (
                self._connect()
                .execute("SELECT count(*) FROM serving_entry WHERE dataset = ? AND version = ?", (dataset, version))
                .fetchone()[0]
            )

    def activate_version(
        self, info: VersionInfo, previous: str | None, lock_token: str, revoke_previous: bool = False
    ) -> None:
        with self._transaction(f"making {info.version} the current version of {info.dataset}") as conn:
            held = conn.execute(
                "SELECT 1 FROM serving_lock WHERE dataset = ? AND token = ? AND expires_at > ?",
                (info.dataset, lock_token, time.time()),
            ).fetchone()
            if held is None:
                raise LockLostError(
                    f"the publish lock of {info.dataset} is no longer ours: {info.version} not made current"
                )
            conn.execute(
                "UPDATE serving_version SET meta = ? WHERE dataset = ? AND version = ?",
                (json.dumps(info.to_fields()), info.dataset, info.version),
            )
            conn.execute(
                "INSERT INTO serving_pointer (dataset, version) VALUES (?, ?)"
                " ON CONFLICT (dataset) DO UPDATE SET version = excluded.version",
                (info.dataset, info.version),
            )
            if revoke_previous and previous and previous != info.version:
                conn.execute(
                    "UPDATE serving_version SET meta = json_set(meta, '$.status', 'revoked')"
                    " WHERE dataset = ? AND version = ?",
                    (info.dataset, previous),
                )

    def delete_version(self, dataset: str, version: str) -> None:
        with self._transaction(f"deleting version {version} of {dataset}") as conn:
            conn.execute("DELETE FROM serving_entry WHERE dataset = ? AND version = ?", (dataset, version))
            conn.execute("DELETE FROM serving_version WHERE dataset = ? AND version = ?", (dataset, version))

    def erase_entity(self, dataset: str, entity: str) -> int:
        with self._transaction(f"erasing {entity!r} from {dataset}") as conn:
            versions = [
                row[0]
                for row in conn.execute(
                    "SELECT version FROM serving_entry WHERE dataset = ? AND entity = ?", (dataset, entity)
                )
            ]
            conn.execute("DELETE FROM serving_entry WHERE dataset = ? AND entity = ?", (dataset, entity))
            for version in versions:
                conn.execute(
                    "UPDATE serving_version SET meta = json_set(meta, '$.key_count', CAST("
                    "(SELECT count(*) FROM serving_entry WHERE dataset = ? AND version = ?) AS TEXT))"
                    " WHERE dataset = ? AND version = ?",
                    (dataset, version, dataset, version),
                )
        return len(versions)

    def lookup(self, dataset: str, entity: str, fallback_entity: str | None = None) -> Lookup | None:
        with self._errors(f"reading {dataset}"):
            row = self._connect().execute(_LOOKUP_SQL, (entity, fallback_entity, dataset)).fetchone()
        if row is None:
            return None
        version, meta, payload, fallback_payload = row
        info = json.loads(meta)
        return Lookup(
            version=version,
            payload=payload if payload is not None else fallback_payload,
            fallback=payload is None and fallback_payload is not None,
            model_version=info.get("model_version", ""),
            run_id=info.get("run_id", ""),
            generated_at=datetime.fromisoformat(info["generated_at"]) if info.get("generated_at") else None,
        )

    def overlay(
        self, dataset: str, based_on: str, entities: Sequence[str], payloads: Sequence[bytes], refreshed_at: datetime
    ) -> bool:
        with self._transaction(f"overlaying {len(entities)} values on {dataset} version {based_on}") as conn:
            row = conn.execute("SELECT version FROM serving_pointer WHERE dataset = ?", (dataset,)).fetchone()
            if row is None or row[0] != based_on:
                return False
            _insert_entries(conn, dataset, based_on, entities, payloads)
            meta = conn.execute(
                "SELECT meta FROM serving_version WHERE dataset = ? AND version = ?", (dataset, based_on)
            ).fetchone()[0]
            count = conn.execute(
                "SELECT count(*) FROM serving_entry WHERE dataset = ? AND version = ?", (dataset, based_on)
            ).fetchone()[0]
            info = replace(VersionInfo.from_fields(json.loads(meta)), refreshed_at=refreshed_at, key_count=count)
            conn.execute(
                "UPDATE serving_version SET meta = ? WHERE dataset = ? AND version = ?",
                (json.dumps(info.to_fields()), dataset, based_on),
            )
        return True

    def acquire_lock(self, dataset: str, token: str, ttl_s: float) -> bool:
        now = time.time()
        with self._transaction(f"locking {dataset} for publishing") as conn:
            row = conn.execute("SELECT token, expires_at FROM serving_lock WHERE dataset = ?", (dataset,)).fetchone()
            if row is not None and row[0] != token and row[1] > now:
                return False
            conn.execute(
                "INSERT OR REPLACE INTO serving_lock (dataset, token, expires_at) VALUES (?, ?, ?)",
                (dataset, token, now + ttl_s),
            )
        return True

    def renew_lock(self, dataset: str, token: str, ttl_s: float) -> bool:
        with self._transaction(f"renewing the publish lock of {dataset}") as conn:
            cursor = conn.execute(
                "UPDATE serving_lock SET expires_at = ? WHERE dataset = ? AND token = ?",
                (time.time() + ttl_s, dataset, token),
            )
        return cursor.rowcount == 1

    def release_lock(self, dataset: str, token: str) -> None:
        with self._transaction(f"releasing the publish lock of {dataset}") as conn:
            conn.execute("DELETE FROM serving_lock WHERE dataset = ? AND token = ?", (dataset, token))

    def close(self) -> None:
        with self._guard:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()
