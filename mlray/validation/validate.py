"""Validate a training set before anything trains on it.

Two passes over the (materialized) Ray Dataset, each block summarised where
it lives and only the summaries brought to the driver:

1. profile: the pandera schema on every block (failure counts and examples),
   null counts, categorical value counts, and a proportional sample of each
   numeric column (for the reference's quantile edges);
2. histograms: counts per bin for this run's new reference distributions and
   for the champion's reference (when there is one), from which PSI follows.

Checks: row count, schema, both label classes present, null rate per feature
(configurable limits), PSI per feature against the champion's training data
(over ``psi_fail`` fails unless ``allow_drift``; over ``psi_warn`` warns).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pdr
import pyarrow as pa
import pyarrow.compute as pc
import ray.data

from mlray.features.feature_view import Field
from mlray.features.kinds import categorical_columns
from mlray.validation.config import ValidationConfig
from mlray.validation.psi import (
    Distribution,
    Reference,
    categorical_bins,
    category_key,
    numeric_bins,
    psi,
    value_counts,
)
from mlray.validation.report import CheckResult, Status, ValidationReport
from mlray.validation.schema import derive_schema, describe_schema, to_frame

SAMPLE_ROWS = 20_000
EXAMPLES = 3


class _Profile:
    """Per block: pandera failures, null/value counts, a numeric sample (JSON in one row)."""

    def __init__(
        self,
        schema: pdr.DataFrameSchema,
        numeric: list[str],
        categorical: list[str],
        label: str,
        fraction: float,
    ) -> None:
        self.schema, self.numeric, self.categorical, self.label = (
            schema,
            numeric,
            categorical,
            label,
        )
        self.fraction = fraction

    def __call__(self, batch: pa.Table) -> dict[str, np.ndarray]:
        part: dict[str, Any] = {
            "rows": batch.num_rows,
            "nulls": {},
            "values": {},
            "sample": {},
            "failures": {},
            "positives": 0,
        }
        names = set(batch.schema.names)
        if batch.num_rows:
            part["failures"] = _schema_failures(self.schema, batch)
            part["positives"] = _positives(batch, self.label)
        rng = np.random.default_rng(batch.num_rows)
        keep = rng.random(batch.num_rows) < self.fraction
        for c in self.numeric + self.categorical:
            if c not in names:
                continue
            col = batch.column(c)
            part["nulls"][c] = int(col.null_count) + (
                int(pc.sum(pc.is_nan(col)).as_py() or 0) if pa.types.is_floating(col.type) else 0
            )
            if c in self.categorical:
                part["values"][c] = value_counts(col)
            elif _is_number(
                col.type
            ):  # another type is the schema check's to report, not a crash here
                x = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)[keep]
                part["sample"][c] = [float(v) for v in x[~np.isnan(x)]]
        return {"profile": np.array([json.dumps(part)], dtype=object)}


def _positives(batch: pa.Table, label: str) -> int:
    if label not in batch.schema.names:
        return 0
    y = batch.column(label)
    if not (
        pa.types.is_boolean(y.type) or pa.types.is_integer(y.type) or pa.types.is_floating(y.type)
    ):
        return 0  # the schema check reports the label's type
    return int(pc.sum(pc.cast(y, pa.int64())).as_py() or 0)


def _is_number(t: pa.DataType) -> bool:
    return (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_decimal(t)
    )


def _schema_failures(schema: pdr.DataFrameSchema, batch: pa.Table) -> dict[str, dict[str, Any]]:
    """``{"column: check": {"count": n, "examples": [...]}}`` for one block."""
    try:
        schema.validate(to_frame(batch), lazy=True)
        return {}
    except pdr.errors.SchemaErrors as e:
        cases = e.failure_cases
    out: dict[str, dict[str, Any]] = {}
    for (col, check), group in cases.groupby(
        [cases["column"].fillna("<table>"), cases["check"].astype(str)]
    ):
        examples = [None if pd.isna(v) else str(v) for v in group["failure_case"].head(EXAMPLES)]
        out[f"{col}: {check}"] = {"count": len(group), "examples": examples}
    return out


class _Histograms:
    """Per block: counts per bin of each distribution (keyed ``side/column``)."""

    def __init__(self, dists: dict[str, Distribution]) -> None:
        self.dists = dists

    def __call__(self, batch: pa.Table) -> dict[str, np.ndarray]:
        out = {}
        names = set(batch.schema.names)
        for key, d in self.dists.items():
            col = key.split("/", 1)[1]
            if col not in names:
                continue
            values = batch.column(col)
            if d.kind == "numeric":
                if not _is_number(values.type):
                    # The reference saw another type: PSI is not defined; the schema check
                    # reports it.
                    continue
                x = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
            else:
                x = [category_key(v) for v in values.to_pylist()]
            out[key] = d.bin_counts(x).tolist()
        return {"counts": np.array([json.dumps(out)], dtype=object)}


def _merge_profiles(rows: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {
        "rows": 0,
        "positives": 0,
        "nulls": {},
        "values": {},
        "sample": {},
        "failures": {},
    }
    for row in rows:
        p = json.loads(row["profile"])
        total["rows"] += p["rows"]
        total["positives"] += p["positives"]
        for c, n in p["nulls"].items():
            total["nulls"][c] = total["nulls"].get(c, 0) + n
        for c, counts in p["values"].items():
            merged = total["values"].setdefault(c, {})
            for k, n in counts.items():
                merged[k] = merged.get(k, 0) + n
        for c, xs in p["sample"].items():
            total["sample"].setdefault(c, []).extend(xs)
        for name, f in p["failures"].items():
            agg = total["failures"].setdefault(name, {"count": 0, "examples": []})
            agg["count"] += f["count"]
            agg["examples"] = (agg["examples"] + f["examples"])[:EXAMPLES]
    return total


def validate_training_set(
    ds: ray.data.Dataset,
    fields: Mapping[str, Field],
    *,
    label: str,
    label_time: str,
    config: ValidationConfig,
    categorical: Sequence[str] = (),
    reference: Reference | None = None,
    reference_name: str | None = None,
) -> tuple[ValidationReport, Reference]:
    """Run every check on a training set; build the reference distributions a new model would store.

    Args:
        ds: the training set (materialize it first: it is read twice).
        fields: feature column -> declared :class:`Field` (types, nullability, ranges).
        label: the label column; label_time: its time column.
        config: thresholds (null rates, PSI, minimum rows).
        categorical: columns binned by category (strings always are).
        reference: the champion's reference distributions, None on a first run.
        reference_name: what the reference is, for the report (e.g. ``"ctr_model v3"``).

    Returns:
        The report (``report.passed`` says whether training may go on) and this
        training set's own reference distributions.
    """
    cats = categorical_columns({c: f.dtype for c, f in fields.items()}, categorical)
    nums = [c for c in fields if c not in cats]
    schema = derive_schema(fields, label, label_time)
    total = ds.count()
    fraction = min(1.0, SAMPLE_ROWS / max(total, 1))
    profile = _merge_profiles(
        ds.map_batches(
            _Profile(schema, nums, cats, label, fraction), batch_format="pyarrow", batch_size=None
        ).take_all()
    )
    bins = {
        c: numeric_bins(np.asarray(profile["sample"].get(c, []), dtype=np.float64), config.psi_bins)
        for c in nums
    }
    bins.update({c: categorical_bins(profile["values"].get(c, {})) for c in cats})
    dists = {f"new/{c}": d for c, d in bins.items()}
    if reference is not None:
        dists.update({f"ref/{c}": d for c, d in reference.features.items() if c in fields})
    counts = _sum_counts(
        ds.map_batches(_Histograms(dists), batch_format="pyarrow", batch_size=None).take_all()
    )
    new_ref = Reference(
        {c: d.with_counts(counts.get(f"new/{c}", np.zeros(d.num_bins))) for c, d in bins.items()},
        rows=profile["rows"],
    )
    psis = {}
    if reference is not None:
        for c, d in reference.features.items():
            if f"ref/{c}" in counts:
                psis[c] = psi(d.proportions, d.with_counts(counts[f"ref/{c}"]).proportions)
    checks = _checks(profile, fields, label, config, psis, reference is not None, reference_name)
    report = ValidationReport(
        checks=checks,
        rows=profile["rows"],
        psi=psis,
        null_rates={c: profile["nulls"].get(c, 0) / max(profile["rows"], 1) for c in fields},
        failures=profile["failures"],
        schema=describe_schema(schema),
        reference=reference_name,
        psi_warn=config.psi_warn,
        psi_fail=config.psi_fail,
    )
    return report, new_ref


def _sum_counts(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for row in rows:
        for key, c in json.loads(row["counts"]).items():
            arr = np.asarray(c, dtype=np.int64)
            out[key] = out[key] + arr if key in out else arr
    return out


def null_limit(config: ValidationConfig, column: str) -> float:
    """The null-rate limit of a column, looked up by column name or by its ``view:feature`` ref."""
    ref = column.replace("__", ":", 1)
    return config.max_null_rate.get(
        column, config.max_null_rate.get(ref, config.default_max_null_rate)
    )


def _checks(
    profile: dict[str, Any],
    fields: Mapping[str, Field],
    label: str,
    config: ValidationConfig,
    psis: dict[str, float],
    has_reference: bool,
    reference_name: str | None,
) -> list[CheckResult]:
    rows = profile["rows"]
    checks = [
        CheckResult(
            "rows",
            "pass" if rows >= config.min_rows else "fail",
            f"{rows:,} rows (minimum {config.min_rows:,})",
        )
    ]
    fails = profile["failures"]
    detail = "; ".join(
        f"{k} ({v['count']:,} rows, e.g. {v['examples']})" for k, v in sorted(fails.items())
    )
    checks.append(
        CheckResult(
            "schema",
            "fail" if fails else "pass",
            detail or f"{len(fields)} features: types, nullability and ranges as declared",
        )
    )
    pos = profile["positives"]
    checks.append(
        CheckResult(
            "label classes",
            "pass" if 0 < pos < rows else "fail",
            f"{pos:,} positive of {rows:,} in {label!r}; both classes are needed",
        )
    )
    for c in fields:
        rate, limit = profile["nulls"].get(c, 0) / max(rows, 1), null_limit(config, c)
        checks.append(
            CheckResult(
                f"null rate {c}",
                "pass" if rate <= limit else "fail",
                f"{rate:.2%} null (limit {limit:.2%}; set validation.max_null_rate to change)",
            )
        )
    if not has_reference:
        checks.append(
            CheckResult(
                "drift", "pass", "no champion yet: no reference to compare with (first run)"
            )
        )
    for c, value in sorted(psis.items()):
        status: Status = "pass"
        if value > config.psi_fail:
            status = "warn" if config.allow_drift else "fail"
        elif value > config.psi_warn:
            status = "warn"
        checks.append(
            CheckResult(
                f"drift {c}",
                status,
                f"PSI {value:.3f} vs {reference_name or 'reference'} "
                f"(warn > {config.psi_warn}, fail > {config.psi_fail}"
                f"{', drift allowed' if config.allow_drift else ''})",
            )
        )
    return checks
