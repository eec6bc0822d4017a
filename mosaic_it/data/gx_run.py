"""Running the suite with Great Expectations and reading back which row failed which check.

An ephemeral context (nothing written but the data docs, published whole via mosaic_it.atomic), analytics and progress bars off.
Row attribution uses GX's COMPLETE result format with `position` as the row id column.
"""
from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mosaic_it.atomic import atomic_dir
from mosaic_it.data.ingest import TEXT_FIELDS
from mosaic_it.data.suite import Check
from mosaic_it.errors import MosaicItError
from mosaic_it.paths import refuse_symlink_outside

SUITE_NAME = "instruction_records"


@dataclass
class SuiteOutcome:
    reasons: dict[int, list[str]]  # position -> reasons, in suite order; positions that passed are absent
    observed: dict[int, dict[str, Any]]  # position -> {column: value GX found} for the non-text columns
    success: bool
    data_docs_index: Path


def _context(docs_dir: Path):
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    site = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        data_docs_sites={"local_site": site},
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def run_suite(frame: pd.DataFrame, checks: list[Check], docs_dir: Path) -> SuiteOutcome:
    # Fresh docs replace the old ones whole (those of an earlier run would mislead), and only once
    # written; a data_docs symlink that leads out of the output folder is refused, never followed.
    docs_dir = Path(docs_dir)
    refuse_symlink_outside(docs_dir, docs_dir.parent)
    with atomic_dir(docs_dir) as staging:
        result = _run_checkpoint(frame, checks, staging)
    return _outcome(result, docs_dir.resolve() / "index.html")


def _run_checkpoint(frame: pd.DataFrame, checks: list[Check], docs_dir: Path) -> Any:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    context = _context(docs_dir.resolve())
    batch = context.data_sources.add_pandas("records").add_dataframe_asset("records")
    batch_definition = batch.add_batch_definition_whole_dataframe("all_records")
    suite = context.suites.add(gx.ExpectationSuite(name=SUITE_NAME))
    for check in checks:
        expectation_class = getattr(gxe, check.expectation)
        suite.add_expectation(expectation_class(**check.kwargs, meta={"reason": check.reason}))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=SUITE_NAME, data=batch_definition, suite=suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name="validate",
            validation_definitions=[definition],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")],
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["position"]},
        )
    )
    return checkpoint.run(batch_parameters={"dataframe": frame})


def _outcome(result: Any, data_docs_index: Path) -> SuiteOutcome:
    reasons: dict[int, list[str]] = defaultdict(list)
    observed: dict[int, dict[str, Any]] = defaultdict(dict)
    for validation in result.run_results.values():
        for outcome in validation.results:
            reason = outcome.expectation_config.meta["reason"]
            error = _raised(outcome.exception_info)
            if error is not None:
                raise MosaicItError(f"Great Expectations could not evaluate check {reason}: {error}")
            column = outcome.expectation_config.kwargs["column"]
            for row in outcome.result.get("unexpected_index_list") or []:
                position = int(row["position"])
                reasons[position].append(reason)
                if column not in TEXT_FIELDS:  # the texts themselves are in the rejected record already
                    observed[position][column] = _plain(row[column])
    return SuiteOutcome(dict(reasons), dict(observed), bool(result.success), data_docs_index)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value  # numpy scalars -> JSON-friendly


def _raised(info: dict | None) -> str | None:
    """The exception message GX recorded for an expectation, if any (flat or keyed by metric)."""
    if not info:
        return None
    entries = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    for entry in entries:
        if entry.get("raised_exception"):
            return str(entry.get("exception_message") or "unknown error").splitlines()[0]
    return None
