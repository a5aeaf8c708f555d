"""``make run``'s closing summary: what each dataset serves after the night, and how to read it."""

from __future__ import annotations

from datetime import date

from sample_shop.run import served
from shopml.airflow_env import DagRunOutcome, TaskOutcome
from shopml.lake import Lake
from shopml.settings import load_settings
from tests.integration.serving.serving_tables import user_lists_table

NIGHT = date(2026, 1, 2)
SKIP = "nothing to publish for inventory: the shop has no inventory_snapshots feed"


def _published(dataset: str, keys: int) -> TaskOutcome:
    result = {"version": "20260102-1a2b3c4d", "key_count": keys, "reused": False}
    return TaskOutcome(f"publish.publish_{dataset}", "success", result=result)


def test_the_summary_names_every_list_served_and_a_buy_again_example(tmp_path):
    settings = load_settings(var_root=tmp_path / "var")
    lists = {"all": {"u1": ["a"], "u2": ["b"]}, "buy_again": {"u2": ["c"]}, "discover": {"u1": ["d"]}}
    Lake(settings).write_arrow(user_lists_table(lists, NIGHT), "gold.recommendations")
    tasks = [
        _published("recommendations", 2),
        _published("buy_again", 1),
        _published("discover", 1),
        TaskOutcome("publish.publish_inventory", "skipped", skip_reason=SKIP),
    ]
    run = DagRunOutcome("manual", "success", {task.task_id: task for task in tasks})

    text = served(settings, run, NIGHT)

    assert "  buy_again        version 20260102-1a2b3c4d: 1 keys" in text
    assert "  discover         version 20260102-1a2b3c4d: 1 keys" in text
    assert f"  inventory        skipped: {SKIP}" in text
    assert "curl http://127.0.0.1:8000/v1/recommendations/u1\n" in text
    assert "curl 'http://127.0.0.1:8000/v1/recommendations/u2?list=buy_again'" in text


def test_no_buy_again_example_when_the_list_was_not_published(tmp_path):
    settings = load_settings(var_root=tmp_path / "var")
    Lake(settings).write_arrow(user_lists_table({"all": {"u1": ["a"]}}, NIGHT), "gold.recommendations")
    reason = "nothing to publish for buy_again: gold.recommendations has no list column"
    skipped = TaskOutcome("publish.publish_buy_again", "skipped", skip_reason=reason)
    run = DagRunOutcome("manual", "success", {skipped.task_id: skipped})

    text = served(settings, run, NIGHT)

    assert f"buy_again        skipped: {reason}" in text and "list=buy_again" not in text
