"""days_since_first_seen built for several dates in one pass (a backfill) equals the nightly chain of one-date builds.

The contract: the count is carried from the previous day's row and starts over
after 90 days of absence. A pass reads events from 89 days before its first
date, so it sees further back than each night's own 90 days; it must still
start the count over where the chain does.
"""

from __future__ import annotations

from datetime import date, timedelta

from jobs.transforms.features import build_user_features, summarise_activity
from shopml.config.features import FeaturesConfig
from tests.unit.features.feature_rows import event

CONFIG = FeaturesConfig()
LAST = date(2024, 6, 1)
WINDOW = [LAST - timedelta(days=2), LAST - timedelta(days=1), LAST]
BEFORE = WINDOW[0] - timedelta(days=1)


def _view(user: str, day: date, n: int) -> tuple:
    return event(f"{user}-{n}", "view", user, f"s-{user}-{n}", "A", f"{day.isoformat()}T10:00:00")


def _days(*offsets: int) -> list[date]:
    return [LAST - timedelta(days=offset) for offset in offsets]


# back: seen 91 days before LAST, then not until LAST (absent for the 90 days between: starts over);
# gap90: absent for 89 days only (stays in every day's 90-day window: the count carries on);
# old: as back, and seen long before too (older history never leaks back in);
# daily: seen every day for 100 days (carried from the day before the window); new: first seen inside the window.
USERS = {
    "back": _days(91, 0),
    "gap90": _days(90, 0),
    "old": _days(200, 91, 0),
    "daily": _days(*range(100)),
    "new": _days(1, 0),
}


def _first_seen(frame) -> dict[tuple[date, str], int]:
    return {(row.feature_date, row.user_id): row.days_since_first_seen for row in frame.collect()}


def test_a_backfill_pass_starts_the_count_over_where_the_nightly_chain_does(frames):
    rows = [_view(user, day, n) for user, days in USERS.items() for n, day in enumerate(days)]
    data = frames(rows)

    def build(days, previous):
        activity = summarise_activity(data["events"], data["order_lines"], min(days), max(days), CONFIG)
        return build_user_features(activity, data["products"], days, CONFIG, previous).cache()

    start = build([BEFORE], None)  # the night before the window, as both runs find it
    nightly, previous = {}, start
    for day in WINDOW:
        built = build([day], previous)
        nightly |= _first_seen(built)
        previous = built
    backfill = _first_seen(build(WINDOW, start))

    assert (nightly[(LAST, "back")], nightly[(LAST, "old")], nightly[(LAST, "new")]) == (0, 0, 1)
    assert (nightly[(LAST, "gap90")], nightly[(LAST, "daily")]) == (90, 92)
    assert backfill == nightly
