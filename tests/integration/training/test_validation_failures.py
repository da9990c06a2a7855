"""A failed validation (schema, null rate, drift) stops the run.

Nothing is registered and the champion is unchanged.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import deltalake
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml
from training_helpers import SMALL, mlflow_client, small_config
from typer.testing import CliRunner

from mlray.config import Settings
from mlray.errors import ValidationFailed
from mlray.pipeline import PipelineResult, run_pipeline
from mlray.validation.report import ValidationReport

REPO = Path(__file__).resolve().parents[3]


def labels_with_prices(settings: Settings, out: Path, factor: float, every: int = 1) -> str:
    """A Parquet copy of the impressions, the shown price times ``factor`` every ``every`` rows."""
    table = deltalake.DeltaTable(settings.table_uri("raw", "impressions")).to_pyarrow_table()
    hit = pa.array(np.arange(table.num_rows) % every == 0)
    price = pc.if_else(hit, pc.multiply(table.column("price"), factor), table.column("price"))
    pq.write_table(table.set_column(table.schema.get_field_index("price"), "price", price), out)
    return str(out)


def registry_state(settings: Settings) -> tuple[list[str], str]:
    client = mlflow_client(settings)
    versions = sorted(str(v.version) for v in client.search_model_versions("name='ctr_model'"))
    return versions, str(client.get_model_version_by_alias("ctr_model", "champion").version)


def last_run(settings: Settings):
    client = mlflow_client(settings)
    exp = client.get_experiment_by_name(SMALL["experiment"])
    return client, client.search_runs(
        [exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=1
    )[0]


def assert_stopped_at_validation(
    settings: Settings, before: tuple[list[str], str]
) -> ValidationReport:
    assert registry_state(settings) == before
    client, run = last_run(settings)
    assert run.info.status == "FAILED" and run.data.tags["mlray.failed_stage"] == "validate"
    assert run.data.tags["mlray.validation"] == "failed"
    paths = {a.path for a in client.list_artifacts(run.info.run_id, "validation")}
    assert paths == {"validation/report.html", "validation/report.json"}
    assert not any(a.path == "model" for a in client.list_artifacts(run.info.run_id))
    from mlflow.artifacts import load_dict

    return ValidationReport.from_dict(load_dict(f"{run.info.artifact_uri}/validation/report.json"))


def test_null_rate_over_the_limit_stops_the_job(
    train_root: Settings, first_run: PipelineResult, tmp_path: Path
):
    before = registry_state(train_root)
    config = tmp_path / "train.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                **SMALL,
                # From the first day: before the 7-day windows fill, new users have no
                # history yet (about 2% null); once they are full, none is null.
                "labels": {"start_after_lookback": False},
                "validation": {"default_max_null_rate": 0.001},
                "settings": {"data_root": str(train_root.data_root), "num_buckets": 4},
            }
        )
    )
    spec = importlib.util.spec_from_file_location(
        "train_pipeline_job", REPO / "jobs" / "train_pipeline.py"
    )
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    assert job.main(["--config", str(config)]) == 2
    report = assert_stopped_at_validation(train_root, before)
    failed = {c.name for c in report.failed}
    assert "null rate user_activity__ctr_7d" in failed and "schema" not in failed


def test_schema_violation_stops_the_job(
    train_root: Settings, first_run: PipelineResult, tmp_path: Path
):
    from mlray.cli import app

    before = registry_state(train_root)
    labels = labels_with_prices(train_root, tmp_path / "labels.parquet", -1.0, every=50)
    config = tmp_path / "train.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                **SMALL,
                "labels": {"table": labels},
                "settings": {"data_root": str(train_root.data_root), "num_buckets": 4},
            }
        )
    )
    result = CliRunner().invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 2, result.output
    report = assert_stopped_at_validation(train_root, before)
    assert [c.name for c in report.failed] == ["schema"]
    assert any(k.startswith("request_features__price_vs_usual") for k in report.failures)


def test_drift_against_the_champion_stops_the_job(
    train_root: Settings, first_run: PipelineResult, tmp_path: Path
):
    before = registry_state(train_root)
    labels = labels_with_prices(train_root, tmp_path / "labels.parquet", 4.0)
    with pytest.raises(ValidationFailed, match="drift request_features__price_vs_usual") as err:
        run_pipeline(train_root, small_config(labels={"table": labels}), echo=lambda line: None)
    report = assert_stopped_at_validation(train_root, before)
    assert report.reference == f"ctr_model v{before[1]} (champion)"
    assert report.psi["request_features__price_vs_usual"] > 0.25
    assert {c.name for c in report.failed} == {
        f"drift {k}" for k, v in report.psi.items() if v > 0.25
    }
    assert ValidationReport.from_dict(err.value.report).failed == report.failed
