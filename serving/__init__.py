"""Serving store and storefront read API: precomputed model outputs, read by key in milliseconds.

The storefront never queries Delta or runs a model. Nightly, ``publish_dataset`` copies each scored
partition into a serving store as a new immutable version and flips a pointer to it; the FastAPI app
(``uvicorn serving.api:app``) reads the current version by key.

Datasets and keys (one JSON value per entity; shapes in ``serving.encoding``):

======================  ==========================  =============  ===================================
dataset                 source table                key            value
======================  ==========================  =============  ===================================
``recommendations``     ``gold.recommendations``    ``user_id``    ranked items + ``is_fallback``;
                        (``list = 'all'``, or every                ``__default__`` = list for unknown users
                        row before that column)
``buy_again``           ``gold.recommendations``    ``user_id``    the same, items bought before; no
                        (``list = 'buy_again'``)                   ``__default__``: none is an empty list
``discover``            ``gold.recommendations``    ``user_id``    the same, items new to the user;
                        (``list = 'discover'``)                    ``__default__`` for unknown users
``similar``             ``gold.similar_items``      ``sku``        ranked similar SKUs
``forecasts``           ``gold.demand_forecasts``   ``sku``        P10/P50/P90 per day of the horizon
``inventory``           ``gold.inventory_plan``     ``sku``        the SKU's inventory plan
======================  ==========================  =============  ===================================

Redis key design (``{dataset}`` is literal braces, a cluster hash tag keeping a dataset in one slot)::

    shopml:{recommendations}:current                 -> "20260102-1a2b3c4d"      current version id
    shopml:{recommendations}:versions                zset of version ids (score: created_at)
    shopml:{recommendations}:meta:20260102-1a2b3c4d  hash: status, run_id, scored_date, model_version,
                                                     generated_at, published_at, key_count, checksum,
                                                     triggered_by, refreshed_at
    shopml:{recommendations}:data:20260102-1a2b3c4d  hash: user_id -> JSON value
    shopml:{recommendations}:lock                    publish lock (lease)

A version id is ``<scored_date>-<blake2b(run_id)[:8]>``, so rerunning a run republishes the same
version. A read is one Lua script (``GET`` pointer, ``HGET`` value, ``HMGET`` provenance): one round
trip, atomic, so a reader never pairs one version's pointer with another's value. A version's values
live in one hash per version: a write batch is one pipelined ``HSET``, the count check is ``HLEN``,
gc is one ``UNLINK`` and TTLs are one ``EXPIRE``. Only the current version has no TTL: a version
being written expires after ``orphan_ttl_s`` unless its writer keeps renewing it, and a retired one
after ``retired_ttl_s``, so nothing orphaned lives forever even if gc never runs.

SQLite (the embedded default, ``sqlite:///var/serving.db``) holds the same model in tables
``serving_pointer``, ``serving_version`` and ``serving_entry`` (primary key dataset, version, entity),
in WAL mode so the API reads while a publish writes.

Publishing, verification, gc, rollback and the ``ops.publish_audit`` rows: ``serving.publish``.
CLI: ``python -m serving publish|rollback|versions|gc``.
"""
