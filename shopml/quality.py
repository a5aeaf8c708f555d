"""Great Expectations glue: run the suites in ``expectations/`` on Spark DataFrames.

Suites are plain GX 1.x JSON files, versioned with the code. An expectation's
``severity`` decides what a failure does:

* ``critical`` — the batch is wrong as a whole (schema, uniqueness, row-count
  anomaly): the run stops with a message naming the expectation;
* ``warning`` — individual rows are wrong: GX lists them by key and they go to
  quarantine with the expectation's ``meta.reason`` as the reason.

Every result is also returned as flat rows for ``ops.validation_results`` and
rendered into GX Data Docs under ``<var_root>/gx``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shopml.errors import PermanentError

if TYPE_CHECKING:
    import great_expectations as gx
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

SUITES_DIR = Path(__file__).resolve().parent.parent / "expectations"


class ValidationFailed(PermanentError, RuntimeError):
    """A critical expectation failed: downstream tasks must not run on this batch."""


@dataclass
class ValidationOutcome:
    suite: str
    results: list[dict[str, Any]]
    rejected_keys: dict[str, set[tuple[Any, ...]]] = field(default_factory=dict)
    critical_failures: list[str] = field(default_factory=list)
    data_docs: str | None = None

    @property
    def success(self) -> bool:
        return not self.critical_failures and not self.rejected_keys


def load_suite(name: str, skip: tuple[str, ...] = ()) -> gx.ExpectationSuite:
    """The suite ``expectations/<name>.json`` as a GX ExpectationSuite, less expectations whose reason is in ``skip``."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    path = SUITES_DIR / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"no expectation suite {name!r} at {path}")
    spec = json.loads(path.read_text())
    suite = gx.ExpectationSuite(name=spec["name"], meta=spec.get("meta", {}))
    for item in spec["expectations"]:
        if item.get("meta", {}).get("reason") in skip:
            log.info("%s: %s skipped this run", name, item["type"])
            continue
        suite.add_expectation_configuration(
            ExpectationConfiguration(
                type=item["type"],
                kwargs=item["kwargs"],
                meta=item.get("meta", {}),
                severity=item.get("severity", "warning"),
            )
        )
    return suite


def _context(gx_root: Path) -> gx.data_context.AbstractDataContext:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    gx_root.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=gx_root)
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


def _expectation_label(config) -> str:
    column = config.kwargs.get("column")
    return f"{config.type}({column})" if column else config.type


def _describe_failure(result) -> str:
    observed = result.result.get("observed_value")
    unexpected = result.result.get("unexpected_count")
    bounds = {
        k: v for k, v in result.expectation_config.kwargs.items() if k in ("min_value", "max_value", "column_set")
    }
    detail = f"observed {observed}" if observed is not None else f"{unexpected} unexpected value(s)"
    return f"{_expectation_label(result.expectation_config)} failed: {detail}; expected {bounds or 'none'}"


def validate(
    df: DataFrame,
    suite_name: str,
    key_columns: list[str],
    run_date: date,
    run_id: str,
    gx_root: Path,
    parameters: dict[str, Any] | None = None,
    skip: tuple[str, ...] = (),
) -> ValidationOutcome:
    """Validate ``df`` against a suite; never raises on failures, it reports them.

    Args:
        key_columns: identify rows in GX's unexpected-row lists (unique together, non-null).
        parameters: values for ``{"$PARAMETER": ...}`` placeholders in the suite (bounds known only at run time).
        skip: ``meta.reason`` values of expectations to leave out this run (e.g. SKU integrity when there is no catalogue).
    """
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction

    context = _context(gx_root)
    suite = context.suites.add_or_update(load_suite(suite_name, skip))
    source = context.data_sources.add_or_update_spark(name="spark")
    asset_names = {asset.name for asset in source.assets}
    asset = source.get_asset(suite_name) if suite_name in asset_names else source.add_dataframe_asset(name=suite_name)
    batch_names = {batch.name for batch in asset.batch_definitions}
    batch = (
        asset.get_batch_definition("whole")
        if "whole" in batch_names
        else asset.add_batch_definition_whole_dataframe("whole")
    )
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite_name, data=batch, suite=suite)
    )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=suite_name,
            validation_definitions=[definition],
            actions=[UpdateDataDocsAction(name="data_docs")],
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": key_columns},
        )
    )
    checkpoint_result = checkpoint.run(
        batch_parameters={"dataframe": df},
        expectation_parameters=parameters or {},
        run_id=gx.core.run_identifier.RunIdentifier(run_name=f"{suite_name}-{run_date}-{run_id}"),
    )
    validation = next(iter(checkpoint_result.run_results.values()))
    outcome = ValidationOutcome(suite=suite_name, results=[])
    validated_at = datetime.now(UTC)
    for result in validation.results:
        config = result.expectation_config
        critical = str(config.severity) in ("critical", "FailureSeverity.CRITICAL")
        outcome.results.append(
            {
                "suite": suite_name,
                "landing_date": run_date,
                "run_id": run_id,
                "expectation": config.type,
                "column": config.kwargs.get("column"),
                "severity": "critical" if critical else "warning",
                "success": bool(result.success),
                "element_count": result.result.get("element_count"),
                "unexpected_count": result.result.get("unexpected_count"),
                "observed_value": json.dumps(result.result.get("observed_value"), default=str),
                "validated_at": validated_at,
            }
        )
        if result.success:
            continue
        if critical:
            outcome.critical_failures.append(_describe_failure(result))
            continue
        reason = config.meta.get("reason") or _expectation_label(config)
        keys = {tuple(row[key] for key in key_columns) for row in result.result.get("unexpected_index_list") or []}
        outcome.rejected_keys.setdefault(reason, set()).update(keys)
    sites = context.get_docs_sites_urls()
    outcome.data_docs = sites[0]["site_url"] if sites else None
    log.info(
        "%s for %s: %d expectations, %d critical failure(s), %d row reason(s); data docs %s",
        suite_name,
        run_date,
        len(outcome.results),
        len(outcome.critical_failures),
        len(outcome.rejected_keys),
        outcome.data_docs,
    )
    return outcome
