"""Incremental refresh: the stream's new micro-batches to fresh recommendations and stock status, without retraining.

``python -m jobs.incremental [--ts 2026-01-06T10:05:00Z] [--run-id X]`` (the ``incremental_refresh`` DAG
calls ``refresh.run`` every 5 minutes). One run, a module per step (``merge``, ``replan``, ``rerank``,
``overlay``; ``refresh`` runs them and moves the watermark):

1. lists the micro-batch files under ``<landing>/events/stream/`` the ledger (``ops.stream_files``)
   does not hold, oldest first, at most ``max_files_per_run`` (files named outside the producer
   contract are moved to ``_rejected/`` with a quarantine row and an alert);
2. parses them with the nightly parser, drops duplicates (within the batch and events silver already
   holds) and bot sessions, validates the rest with the nightly ``events`` suite; rejected lines go to
   ``ops.quarantine`` (stages ``stream_clean`` / ``stream_validate``) with their reason;
3. MERGEs the survivors into ``silver.order_lines`` and ``silver.events`` (``feed = 'stream'``),
   insert-only on (event_date, event_id): replays and reruns never double-count, and the nightly
   clean treats these rows as delivered, so each event reaches silver once;
4. brings the nightly features up to now (``jobs/transforms/realtime.py``): stream interactions since
   the feature day, last-hour activity, trending SKUs, on-hand = latest snapshot - purchases since;
5. re-plans stock (the forecaster's own ``plan_inventory`` on the served forecasts) for SKUs just bought,
   and re-ranks, with the promoted recommender, the lists of users active in the batch and of everyone
   whose served list (``recommendations``, ``buy_again`` or ``discover``) shows a SKU that just sold out
   (sold-out SKUs are masked, just-bought ones as the repeat rule says); each re-ranked user gets all
   three lists anew, an empty one where they have none;
6. writes only those keys into the *current* serving versions (``overlay_keys``: atomic per batch,
   refused once a newer nightly version is current) and then, only then, appends the files to the
   ledger and commits the watermark.

A list dataset never published (a lake from before it existed) or served from a baseline that beat the
model (``model_version`` ``baseline:<name>``: re-ranking it with the model would undo that) is left as
served, with the reason under ``skipped`` in the summary.

A failure anywhere leaves the ledger and watermark as they were, so the next run reads the same files again.
When the nightly publishes a new version, overlays of the old one are gone with it: the first run
that sees the new version re-applies everything the stream delivered since its feature day.

Knobs: ``settings.incremental`` (``shopml/config/incremental.py``; env ``SHOPML_INCREMENTAL__<FIELD>``).
"""
