"""Shared plumbing for job entrypoints: settings from --config, failures → one line, exit 2.

Submitted with ``ray job submit --working-dir .``, a job runs in an uploaded copy
of the directory: a relative ``data_root`` would name a folder in that copy, so
it is refused (pass an absolute path or object store URI through the runtime
env, e.g. ``MLRAY_DATA_ROOT``). The job then joins the cluster through
:func:`mlray.ray_session.ensure_ray` before doing anything with Ray.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from mlray.cli_support import report_failure
from mlray.config import Settings, load_settings
from mlray.ray_session import check_job_data_root, ensure_ray, set_verbose


def run_job(
    description: str,
    add_args: Callable[[argparse.ArgumentParser], None],
    body: Callable[[Settings, argparse.Namespace], None],
    *,
    uses_ray: bool = True,
) -> None:
    """Parse ``--config`` and the job's own arguments, run ``body``; exit 2 on an mlray error.

    Args:
        description: the ``--help`` text.
        add_args: adds the job's own arguments.
        body: the job.
        uses_ray: join (or start) Ray before ``body`` runs; False for a job without Ray work.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--config", help="mlray.yaml settings file (else $MLRAY_CONFIG or ./mlray.yaml)"
    )
    parser.add_argument("--verbose", action="store_true", help="Show Ray's own logs too.")
    add_args(parser)
    args = parser.parse_args()
    set_verbose(args.verbose)
    exit_on_failure(lambda: _run(load_settings(args.config), args, body, uses_ray), args.config)


def _run(
    settings: Settings,
    args: argparse.Namespace,
    body: Callable[[Settings, argparse.Namespace], None],
    uses_ray: bool,
) -> None:
    check_job_data_root(settings)
    if uses_ray:
        ensure_ray(settings)
    body(settings, args)


def exit_on_failure(fn: Callable[[], object], config: str | None = None) -> None:
    """Run ``fn``; any failure prints one line (plus its log file's path) and exits with status 2.

    The line is the mlray error (also one Ray wrapped), or the original exception
    with the line of user code that raised it; the full traceback goes to a log
    file under ``<data_root>/logs`` (see :func:`mlray.cli_support.report_failure`).
    """
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - every failure is reported the same way
        report_failure(e, Path(config) if config else None)
        sys.exit(2)
