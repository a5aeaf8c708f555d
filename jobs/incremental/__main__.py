"""``python -m jobs.incremental``: one refresh now (or at ``--ts``)."""

from __future__ import annotations

from jobs.incremental.refresh import main

main()
