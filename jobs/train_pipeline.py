"""Validate, train, tune, judge and register a model version (the training pipeline as a Ray job).

    ray job submit --address http://127.0.0.1:8265 --working-dir . \\
        --runtime-env-json '{"env_vars": {"MLRAY_DATA_ROOT": "'$PWD'/mlray-data"}}' \\
        -- python jobs/train_pipeline.py --config jobs/train.yaml

``--config`` is the training config (:mod:`mlray.training.config`); the mlray
settings come from its ``settings_file``/``settings`` keys, else the usual
lookup (``$MLRAY_CONFIG``, ``./mlray.yaml``, ``MLRAY_*``), or ``--settings``.
Exits 0 when a version was registered, 2 when a stage failed (the reason is
printed; a failed validation registers nothing and leaves the champion as it was).
As a submitted job, ``data_root`` must be absolute or a URI (the job runs in an
uploaded copy of ``.``); the job joins the cluster before anything else.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from mlray.cli_support import report_failure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--config", help="training config YAML (default: all defaults)")
    parser.add_argument(
        "--settings", help="mlray.yaml settings file (overrides the config's settings_file)"
    )
    parser.add_argument("--verbose", action="store_true", help="Show Ray's own logs too.")
    args = parser.parse_args(argv)
    try:
        from mlray.config import load_settings
        from mlray.pipeline import run_pipeline
        from mlray.ray_session import check_job_data_root, ensure_ray, set_verbose
        from mlray.training.config import load_train_config, settings_for

        set_verbose(args.verbose)
        cfg = load_train_config(args.config)
        settings = (
            load_settings(args.settings, **cfg.settings) if args.settings else settings_for(cfg)
        )
        check_job_data_root(settings)
        ensure_ray(settings)
        result = run_pipeline(settings, cfg)
    except Exception as e:  # noqa: BLE001 - one line and a log file, as the CLI does
        report_failure(e, Path(args.settings) if args.settings else None)
        return 2
    print(json.dumps(asdict(result), indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
