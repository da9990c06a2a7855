"""The report: verdict, HTML with the embedded PSI chart, and the error it raises."""

from __future__ import annotations

import pickle

import pytest

from mlray.errors import ValidationFailed
from mlray.validation.report import CheckResult, ValidationReport


def report(*statuses: str, psi=None) -> ValidationReport:
    checks = [CheckResult(f"check {i}", s, f"detail {i}") for i, s in enumerate(statuses)]
    return ValidationReport(
        checks=checks,
        rows=1234,
        psi=psi or {},
        null_rates={"f": 0.01},
        schema=[{"column": "f", "type": "double", "nullable": "yes", "checks": "f >= 0"}],
    )


def test_passing_report_does_not_raise():
    r = report("pass", "warn")
    assert r.passed and [c.name for c in r.warnings] == ["check 1"]
    r.raise_if_failed()
    assert "all 2 checks passed (1 warnings)" in r.summary()


def test_failed_report_raises_validation_failed_carrying_the_report():
    r = report("pass", "fail", "fail")
    with pytest.raises(ValidationFailed) as err:
        r.raise_if_failed()
    assert "check 1, check 2" in err.value.message and "champion is unchanged" in err.value.message
    back = pickle.loads(pickle.dumps(err.value))
    assert ValidationReport.from_dict(back.report).failed == r.failed


def test_html_has_the_checks_and_an_embedded_psi_chart():
    page = report("pass", "fail", psi={"f": 0.3, "g": 0.05}).to_html()
    assert "FAILED" in page and "check 1" in page and "detail 1" in page
    assert "data:image/png;base64,iVBORw0KGgo" in page
    assert "<td>f</td><td>0.3000</td>" in page


def test_html_without_reference_says_so():
    page = report("pass").to_html()
    assert "PASSED" in page and "No reference distributions" in page and "none (first run)" in page
