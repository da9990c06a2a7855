"""The per-block profile and the checks built from it (validation's parts that need no cluster)."""

from __future__ import annotations

import json

import pyarrow as pa

from mlray.features.feature_view import Field
from mlray.validation.config import ValidationConfig
from mlray.validation.psi import Distribution
from mlray.validation.schema import derive_schema
from mlray.validation.validate import (
    _checks,
    _Histograms,
    _merge_profiles,
    _Profile,
    null_limit,
)

FIELDS = {"u__ctr": Field("ctr", pa.float64(), ge=0, le=1), "c__cat": Field("cat", pa.string())}
TS = pa.timestamp("us", tz="UTC")


def block(ctr, cats, clicked) -> pa.Table:
    return pa.table(
        {
            "u__ctr": pa.array(ctr, pa.float64()),
            "c__cat": pa.array(cats, pa.string()),
            "clicked": pa.array(clicked),
            "event_time": pa.array(list(range(len(ctr))), TS),
        }
    )


def profile(*blocks: pa.Table) -> dict:
    p = _Profile(
        derive_schema(FIELDS, "clicked", "event_time"), ["u__ctr"], ["c__cat"], "clicked", 1.0
    )
    return _merge_profiles([{"profile": p(b)["profile"][0]} for b in blocks])


def statuses(checks) -> dict[str, str]:
    return {c.name: c.status for c in checks}


def test_profile_counts_nulls_values_failures_and_positives_across_blocks():
    prof = profile(
        block([0.1, None, 1.5], ["a", "b", None], [True, False, False]), block([0.2], ["a"], [True])
    )
    assert prof["rows"] == 4 and prof["positives"] == 2
    assert prof["nulls"] == {"u__ctr": 1, "c__cat": 1}
    assert prof["values"]["c__cat"] == {"a": 2, "b": 1}
    assert sorted(prof["sample"]["u__ctr"]) == [0.1, 0.2, 1.5]
    ((name, failure),) = prof["failures"].items()
    assert name.startswith("u__ctr") and failure["count"] == 1 and failure["examples"] == ["1.5"]


def test_checks_fail_on_schema_nulls_single_class_and_too_few_rows():
    prof = profile(block([0.1, None, 1.5], ["a", "b", None], [False, False, False]))
    cfg = ValidationConfig(min_rows=10, default_max_null_rate=0.2, max_null_rate={"c:cat": 0.5})
    st = statuses(_checks(prof, FIELDS, "clicked", cfg, {}, False, None))
    assert st["rows"] == "fail" and st["schema"] == "fail" and st["label classes"] == "fail"
    assert (
        st["null rate u__ctr"] == "fail"
        and st["null rate c__cat"] == "pass"
        and st["drift"] == "pass"
    )
    assert null_limit(cfg, "c__cat") == 0.5 and null_limit(cfg, "u__ctr") == 0.2


def test_psi_thresholds_warn_fail_or_allow():
    prof = profile(block([0.1, 0.2], ["a", "b"], [True, False]))
    psis = {"u__ctr": 0.15, "c__cat": 0.4}
    st = statuses(
        _checks(prof, FIELDS, "clicked", ValidationConfig(min_rows=1), psis, True, "m v1")
    )
    assert st["drift u__ctr"] == "warn" and st["drift c__cat"] == "fail"
    allowed = statuses(
        _checks(
            prof,
            FIELDS,
            "clicked",
            ValidationConfig(min_rows=1, allow_drift=True),
            psis,
            True,
            "m v1",
        )
    )
    assert allowed["drift c__cat"] == "warn"


def test_histograms_bin_each_distribution_and_skip_type_mismatches():
    dists = {
        "new/u__ctr": Distribution("numeric", [], [0.15]),
        "ref/c__cat": Distribution("categorical", [], [], ["a"]),
        "ref/u__ctr_gone": Distribution("numeric", [], [0.5]),
    }
    out = json.loads(
        _Histograms(dists)(block([0.1, 0.2, None], ["a", "z", None], [True, False, True]))[
            "counts"
        ][0]
    )
    assert out == {"new/u__ctr": [1, 1, 1], "ref/c__cat": [1, 1, 1]}
    typed = {"new/c__cat": Distribution("numeric", [], [0.5])}
    assert json.loads(_Histograms(typed)(block([0.1], ["a"], [True]))["counts"][0]) == {}


def test_a_mistyped_column_is_reported_by_the_schema_not_a_crash():
    bad = block([0.1, 0.2], ["a", "b"], [True, False]).set_column(0, "u__ctr", pa.array(["x", "y"]))
    prof = profile(bad)
    assert any(k.startswith("u__ctr") for k in prof["failures"]) and "u__ctr" not in prof["sample"]
    assert (
        statuses(_checks(prof, FIELDS, "clicked", ValidationConfig(min_rows=1), {}, False, None))[
            "schema"
        ]
        == "fail"
    )
