"""The validation stage's settings: the checks a training set must pass before training."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ValidationConfig(BaseModel):
    """Data checks before training: schema, null rates, drift from the champion's training data."""

    model_config = ConfigDict(extra="forbid")

    psi_warn: float = Field(0.1, gt=0)
    psi_fail: float = Field(0.25, gt=0)
    allow_drift: bool = Field(
        False, description="Warn instead of failing when a feature's PSI is over psi_fail."
    )
    psi_bins: int = Field(10, ge=2, le=100)
    default_max_null_rate: float = Field(
        0.2, ge=0, le=1, description="Null-rate limit of every feature."
    )
    max_null_rate: dict[str, float] = Field(
        default_factory=dict, description="Per-feature limits, by 'view:feature' or column name."
    )
    min_rows: int = Field(100, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> ValidationConfig:
        if self.psi_warn > self.psi_fail:
            raise ValueError(
                f"psi_warn ({self.psi_warn}) must not exceed psi_fail ({self.psi_fail})"
            )
        bad = {k: r for k, r in self.max_null_rate.items() if not 0 <= r <= 1}
        if bad:
            raise ValueError(f"max_null_rate values must be within [0, 1]: {bad}")
        return self
