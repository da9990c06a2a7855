"""CLI: ``mlray train --config train.yaml``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import typer

from mlray.cli_support import SettingsOpt, handle_errors, print_rows

TrainConfigOpt = typer.Option(
    None,
    "--config",
    "-c",
    exists=True,
    dir_okay=False,
    help="Training config YAML (default: all defaults).",
)


def register(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add the ``train`` command to the ``mlray`` app."""

    @app.command("train")
    @handle_errors
    def train_cmd(
        config: Path = TrainConfigOpt,
        settings: Path = SettingsOpt,
        num_samples: int = typer.Option(
            None, min=0, help="Override tune.num_samples (0: no tuning)."
        ),
        epochs: int = typer.Option(None, min=1, help="Override training.epochs."),
    ) -> None:
        """Build the training set, validate, train and tune on Ray, judge, register."""
        from mlray.config import load_settings
        from mlray.pipeline import run_pipeline
        from mlray.training.config import load_train_config, settings_for

        cfg = load_train_config(config)
        if num_samples is not None:
            cfg = cfg.model_copy(
                update={"tune": cfg.tune.model_copy(update={"num_samples": num_samples})}
            )
        if epochs is not None:
            cfg = cfg.model_copy(
                update={"training": cfg.training.model_copy(update={"epochs": epochs})}
            )
        s = load_settings(settings, **cfg.settings) if settings else settings_for(cfg)
        r = run_pipeline(s, cfg, echo=typer.echo)
        print_rows(
            f"{r.model_name} v{r.version}",
            [
                {"field": "alias", "value": r.alias},
                {"field": "decision", "value": r.reason},
                *[{"field": k, "value": v} for k, v in r.metrics.items()],
                *[
                    {"field": f"champion {k}", "value": v}
                    for k, v in (r.champion_metrics or {}).items()
                ],
                {"field": "params", "value": r.params},
                {"field": "validation", "value": r.validation},
                {"field": "exported", "value": ", ".join(r.exported) or "state_dict only"},
                {"field": "MLflow run", "value": r.run_id},
            ],
        )
