"""Readers hammering the store and the HTTP API during a publish never see a mix of two versions."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import date

import httpx
import pytest

from serving.publish import publish_dataset, version_id
from serving.store import open_store
from shopml.lake import Lake
from tests.integration.serving.serving_tables import recommendations_table

D1, D2 = date(2026, 1, 2), date(2026, 1, 3)
V1, V2 = version_id(D1, "run-1"), version_id(D2, "run-2")
USERS = [f"u{i:04d}" for i in range(2_000)]
PREFIX = {V1: "A", V2: "B"}


def _lists(prefix: str) -> dict[str, list[str]]:
    return {user: [f"{prefix}-{user}-{rank}" for rank in range(5)] for user in USERS}


@pytest.mark.slow
def test_readers_during_a_publish_see_one_whole_version_and_never_go_back(serving_settings, serving_config, live_api):
    lake = Lake(serving_settings)
    lake.write_arrow(recommendations_table(_lists("A"), D1), "gold.recommendations")
    publish_dataset("recommendations", D1, "run-1", settings=serving_settings, config=serving_config)
    lake.write_arrow(
        recommendations_table(_lists("B"), D2, "run-2"),
        "gold.recommendations",
        replace_where="scored_date = '2026-01-03'",
    )
    base_url = live_api(serving_settings, serving_config)
    done = threading.Event()
    seen: Counter = Counter()
    problems: list[str] = []

    def hammer(read: Callable[[str], tuple[str, list[str]] | str], offset: int) -> None:
        """Read users in a loop until the publish is over and the new version was served a few times."""
        i, deadline = offset, time.monotonic() + 120
        newest_seen = None
        while (not done.is_set() or seen[V2] < 20) and time.monotonic() < deadline and len(problems) < 10:
            user = USERS[i % len(USERS)]
            try:
                got = read(user)
            except Exception as exc:
                got = repr(exc)
            if isinstance(got, str):
                problems.append(f"{user}: {got}")
            else:
                version, skus = got
                if skus != [f"{PREFIX.get(version)}-{user}-{rank}" for rank in range(5)]:
                    problems.append(f"{user}: version {version} served {skus}")
                if newest_seen == V2 and version == V1:
                    problems.append(f"{user}: went back from {V2} to {V1}")
                newest_seen = version
                seen[version] += 1
            i += 7

    store = open_store(serving_settings.serving, serving_config)
    client = httpx.Client(base_url=base_url, timeout=10)

    def read_store(user: str):
        found = store.lookup("recommendations", user)
        if found is None or found.payload is None or found.fallback:
            return f"nothing served: {found}"
        return found.version, [item["sku"] for item in json.loads(found.payload)["items"]]

    def read_api(user: str):
        response = client.get(f"/v1/recommendations/{user}")
        body = response.json()
        if response.status_code != 200 or body["fallback"]:
            return f"HTTP {response.status_code} {response.text[:200]}"
        return body["version"], [item["sku"] for item in body["items"]]

    readers = [threading.Thread(target=hammer, args=(read, i)) for i, read in enumerate([read_store, read_api] * 2)]
    for reader in readers:
        reader.start()
    while sum(seen.values()) < 20:
        time.sleep(0.01)
    before = sum(seen.values())
    publish_dataset(
        "recommendations",
        D2,
        "run-2",
        settings=serving_settings,
        config=serving_config.model_copy(update={"batch_size": 50}),
    )
    during = sum(seen.values()) - before
    done.set()
    for reader in readers:
        reader.join(timeout=150)
    store.close()
    client.close()

    assert not problems, problems
    assert during > 0, "no read overlapped the publish"
    assert seen[V1] > 0 and seen[V2] >= 20
