"""Land a shop's own exports in the raw-data contract: ``python -m shopml.land order-lines FILE``.

Most shops can export one thing: order lines (invoice, SKU, description, quantity,
price, date, customer). This importer turns such an export into the landing zone
the nightly DAG reads:

* ``events/date=D/order-lines.jsonl.gz``: one ``purchase`` per order line, a
  cancellation (invoice marked cancelled, or a negative quantity) as a ``return``,
  anonymous orders with a null ``user_id``; non-product lines (postage, fees) are
  landed as they are, for the cleaner to count as ``non_product_line``;
* ``products/date=D/products.jsonl.gz``: on every trading day, the catalogue as
  known so far (each SKU's latest title and price), since exports carry no feed.

Every input row is a landed line or a counted rejection with a reason (no date,
no quantity, a stock adjustment that no customer made); the accounting is printed
and kept in ``_import/<name>.json`` beside the landing folders.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

IMPORT_DIR = "_import"


@dataclass(frozen=True)
class OrderLineLayout:
    """Which export column holds each order-line field, and how the export marks a cancellation."""

    order_id: str
    sku: str
    quantity: str
    unit_price: str
    ordered_at: str
    customer_id: str | None = None
    title: str | None = None
    cancelled: str | None = None  # a column that is non-empty on cancelled lines
    cancel_prefix: str | None = None  # or: order ids starting with this mark a cancellation
    timezone: str = "UTC"  # of naive timestamps in the export
    currency: str = "EUR"


PRESETS: dict[str, OrderLineLayout] = {
    # UCI "Online Retail II" and the many ERP exports shaped like it (UK wholesaler, GBP, local time).
    "online-retail-ii": OrderLineLayout(
        order_id="Invoice",
        sku="StockCode",
        quantity="Quantity",
        unit_price="Price",
        ordered_at="InvoiceDate",
        customer_id="Customer ID",
        title="Description",
        cancel_prefix="C",
        timezone="Europe/London",
        currency="GBP",
    ),
    # Shopify's "Export orders" CSV: one row per line item.
    "shopify": OrderLineLayout(
        order_id="Name",
        sku="Lineitem sku",
        quantity="Lineitem quantity",
        unit_price="Lineitem price",
        ordered_at="Created at",
        customer_id="Email",
        title="Lineitem name",
        cancelled="Cancelled at",
    ),
}


@dataclass
class ImportReport:
    """Where every input row went: ``input_rows = landed_events + sum(rejected.values())``."""

    source: str
    input_rows: int
    landed_events: int
    rejected: dict[str, int]
    events_by_type: dict[str, int]
    landing_dates: int
    first_date: str | None
    last_date: str | None
    product_lines: int

    @property
    def reconciled(self) -> bool:
        return self.input_rows == self.landed_events + sum(self.rejected.values())

    def render(self) -> str:
        lines = [
            f"Imported {self.source}: {self.input_rows:,} order lines",
            f"  landed   {self.landed_events:>10,} events on {self.landing_dates} trading days "
            f"({self.first_date}..{self.last_date}): "
            + ", ".join(f"{kind} {n:,}" for kind, n in sorted(self.events_by_type.items())),
        ]
        lines += [f"  rejected {n:>10,} {reason}" for reason, n in sorted(self.rejected.items())]
        lines.append(
            f"  products {self.product_lines:>10,} snapshot lines (the catalogue as known on each trading day)"
        )
        verdict = "reconciled" if self.reconciled else "MISMATCH"
        lines.append(
            f"  input {self.input_rows:,} = landed {self.landed_events:,} + rejected "
            f"{sum(self.rejected.values()):,}  [{verdict}]"
        )
        return "\n".join(lines) + "\n"


def _blank(values: pd.Series) -> pd.Series:
    return values.isna() | (values.astype("string").str.strip() == "")


def order_events(
    raw: pd.DataFrame, layout: OrderLineLayout, since: date | None = None
) -> tuple[pd.DataFrame, pd.Series]:
    """Contract event rows for an order-line export, and each rejected row's reason.

    Returns ``(events, rejected)``: ``events`` in the landing contract with an
    ``event_date`` column (the local trading day), and ``rejected`` a Series of
    reasons indexed like ``raw``. Together they account for every input row.
    Lines dated before ``since`` are left out (``before_since``): a slice of a long history.
    """
    import pandas as pd

    missing = [
        c
        for c in (layout.order_id, layout.sku, layout.quantity, layout.unit_price, layout.ordered_at)
        if c not in raw.columns
    ]
    if missing:
        raise ValueError(f"the export has no column(s) {missing}; it has {list(raw.columns)} (pick a preset or --map)")
    order_id = raw[layout.order_id].astype("string").str.strip()
    quantity = pd.to_numeric(raw[layout.quantity], errors="coerce")
    price = pd.to_numeric(raw[layout.unit_price], errors="coerce")
    ordered = pd.to_datetime(raw[layout.ordered_at], errors="coerce", utc=False)
    if getattr(ordered.dt, "tz", None) is None:
        ordered = ordered.dt.tz_localize(layout.timezone, ambiguous="NaT", nonexistent="shift_forward")
    else:
        ordered = ordered.dt.tz_convert(layout.timezone)
    marked = pd.Series(False, index=raw.index)
    if layout.cancel_prefix:
        marked |= order_id.str.startswith(layout.cancel_prefix, na=False)
    if layout.cancelled and layout.cancelled in raw.columns:
        marked |= ~_blank(raw[layout.cancelled])
    has_cancel_marker = bool(layout.cancel_prefix or layout.cancelled)
    # Where the export marks cancellations, a negative line on an unmarked order is a stock
    # adjustment (damaged, lost, found): the shop's bookkeeping, not something a customer did.
    cancelled = marked if has_cancel_marker else quantity < 0
    adjustment = (quantity < 0) & ~marked if has_cancel_marker else pd.Series(False, index=raw.index)

    reason = pd.Series(pd.NA, index=raw.index, dtype="string")
    checks = [
        (_blank(order_id), "missing_order_id"),
        (ordered.isna(), "invalid_timestamp"),
        (quantity.isna() | (quantity % 1 != 0), "invalid_quantity"),
        (quantity == 0, "zero_quantity"),
        (adjustment, "stock_adjustment"),
        (ordered.dt.date < since if since else pd.Series(False, index=raw.index), "before_since"),
    ]
    for condition, text in reversed(checks):
        reason = reason.mask(condition.fillna(False).astype(bool), text)
    kept = reason.isna()

    customer = (
        raw[layout.customer_id].astype("string").str.strip().str.removesuffix(".0")
        if layout.customer_id and layout.customer_id in raw.columns
        else pd.Series(pd.NA, index=raw.index, dtype="string")
    )
    customer = customer.mask(_blank(customer))
    line_no = raw.groupby(order_id, sort=False).cumcount() + 1
    events = pd.DataFrame(
        {
            "event_id": order_id + "-" + line_no.astype("string"),
            "event_type": cancelled.map({True: "return", False: "purchase"}),
            "user_id": customer,
            "session_id": order_id,
            "sku": raw[layout.sku].astype("string").str.strip(),
            "quantity": quantity.abs(),
            "unit_price": price,
            "currency": layout.currency,
            "event_ts": ordered,
            "order_id": order_id,
            "channel": "import",
            "title": raw[layout.title].astype("string").str.strip() if layout.title in raw.columns else pd.NA,
        }
    )[kept]
    events["quantity"] = events["quantity"].astype("int64")
    events["event_date"] = events["event_ts"].dt.date
    return events, reason[~kept]


def product_snapshots(events: pd.DataFrame, non_product_skus: Sequence[str]) -> pd.DataFrame:
    """Per trading day, every product SKU seen so far with its latest title and price (``snapshot_date`` column)."""
    import pandas as pd

    lines = events[~events["sku"].str.upper().isin([s.upper() for s in non_product_skus]) & events["sku"].notna()]
    lines = lines.sort_values("event_ts", kind="stable")
    priced = lines[lines["unit_price"] > 0]
    per_day = (
        pd.concat(
            [
                lines.groupby(["event_date", "sku"])["title"].last().rename("title"),
                priced.groupby(["event_date", "sku"])["unit_price"].last().rename("unit_price"),
            ],
            axis=1,
        )
        .reset_index()
        .sort_values("event_date", kind="stable")
    )
    snapshots = []
    known: dict[str, tuple[Any, Any]] = {}
    for day, changes in per_day.groupby("event_date", sort=True):
        for sku, title, unit_price in changes[["sku", "title", "unit_price"]].itertuples(index=False):
            old_title, old_price = known.get(sku, (None, None))
            known[sku] = (title if pd.notna(title) else old_title, unit_price if pd.notna(unit_price) else old_price)
        snapshots.append(
            pd.DataFrame(
                [(day, sku, title, price) for sku, (title, price) in known.items()],
                columns=["snapshot_date", "sku", "title", "unit_price"],
            )
        )
    catalogue = pd.concat(snapshots, ignore_index=True)
    catalogue["unit_price"] = catalogue["unit_price"].fillna(0.0).round(2)
    catalogue["category"] = None
    catalogue["brand"] = None
    catalogue["active"] = True
    return catalogue


def _write_day(folder: Path, name: str, rows: pd.DataFrame) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows.to_json(folder / name, orient="records", lines=True, date_format="iso", compression="gzip")


def land_order_lines(
    source: Path,
    landing_root: Path,
    layout: OrderLineLayout,
    non_product_skus: Sequence[str],
    since: date | None = None,
) -> ImportReport:
    """Write ``source`` (CSV, optionally gzipped) into ``landing_root`` in the landing contract."""
    import pandas as pd

    raw = pd.read_csv(source, dtype="string", keep_default_na=False, na_values=[""], encoding_errors="replace")
    events, rejected = order_events(raw, layout, since)
    products = product_snapshots(events, non_product_skus)
    contract = events.drop(columns=["title"]).assign(
        event_ts=events["event_ts"].map(lambda ts: ts.isoformat(timespec="seconds")),
        unit_price=events["unit_price"].round(2),
    )
    for day, rows in contract.groupby("event_date", sort=True):
        _write_day(landing_root / "events" / f"date={day}", "order-lines.jsonl.gz", rows.drop(columns="event_date"))
    for day, rows in products.groupby("snapshot_date", sort=True):
        _write_day(landing_root / "products" / f"date={day}", "products.jsonl.gz", rows.drop(columns="snapshot_date"))
    dates = sorted(contract["event_date"].unique())
    report = ImportReport(
        source=source.name,
        input_rows=len(raw),
        landed_events=len(contract),
        rejected={str(k): int(v) for k, v in rejected.value_counts().items()},
        events_by_type={str(k): int(v) for k, v in contract["event_type"].value_counts().items()},
        landing_dates=len(dates),
        first_date=str(dates[0]) if dates else None,
        last_date=str(dates[-1]) if dates else None,
        product_lines=len(products),
    )
    accounting_file = landing_root / IMPORT_DIR / f"{source.name}.json"
    accounting_file.parent.mkdir(parents=True, exist_ok=True)
    accounting_file.write_text(json.dumps(report.__dict__ | {"reconciled": report.reconciled}, indent=2) + "\n")
    return report


def _layout(args: argparse.Namespace) -> OrderLineLayout:
    import dataclasses

    layout = PRESETS[args.preset]
    mapped = dict(item.split("=", 1) for item in args.map)
    unknown = set(mapped) - {f.name for f in dataclasses.fields(OrderLineLayout)}
    if unknown:
        raise SystemExit(f"--map: unknown field(s) {sorted(unknown)}")
    overrides = {k: v for k, v in {"timezone": args.timezone, "currency": args.currency}.items() if v}
    return dataclasses.replace(layout, **mapped, **overrides)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    order_lines = commands.add_parser("order-lines", help="an order-line export (CSV, .csv.gz)")
    order_lines.add_argument("file", type=Path)
    order_lines.add_argument("--out", type=Path, help="landing root (default: the settings' landing root)")
    order_lines.add_argument("--preset", choices=sorted(PRESETS), default="online-retail-ii")
    order_lines.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help="override one column of the preset, e.g. --map customer_id='Customer Email'",
    )
    order_lines.add_argument("--timezone", help="time zone of the export's naive timestamps")
    order_lines.add_argument("--currency", help="ISO currency of the prices")
    order_lines.add_argument("--since", type=date.fromisoformat, help="land only lines from this date on (YYYY-MM-DD)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from shopml.settings import get_settings

    settings = get_settings()
    report = land_order_lines(
        args.file, args.out or settings.landing, _layout(args), settings.non_product_skus, args.since
    )
    sys.stdout.write(report.render())
    if not report.reconciled:
        raise SystemExit("import accounting does not reconcile")


if __name__ == "__main__":
    main()
