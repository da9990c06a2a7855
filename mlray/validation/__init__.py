"""Training-data validation: pandera schema from the feature definitions, null rates, PSI drift."""

from mlray.validation.psi import Distribution, Reference, psi
from mlray.validation.report import CheckResult, ValidationReport

__all__ = ["CheckResult", "Distribution", "Reference", "ValidationReport", "psi"]
