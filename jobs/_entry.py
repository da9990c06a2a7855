"""Shared plumbing for job entrypoints: settings from --config, mlray errors → exit status 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from mlray.config import Settings, load_settings
from mlray.errors import find_mlray_error
from mlray.ray_session import set_verbose


def run_job(
    description: str,
    add_args: Callable[[argparse.ArgumentParser], None],
    body: Callable[[Settings, argparse.Namespace], None],
) -> None:
    """Parse ``--config`` and the job's own arguments, run ``body``; exit 2 on an mlray error."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--config", help="mlray.yaml settings file (else $MLRAY_CONFIG or ./mlray.yaml)"
    )
    parser.add_argument("--verbose", action="store_true", help="Show Ray's own logs too.")
    add_args(parser)
    args = parser.parse_args()
    set_verbose(args.verbose)
    try:
        body(load_settings(args.config), args)
    except Exception as e:  # noqa: BLE001 - non-mlray errors re-raise with their traceback
        err = find_mlray_error(e)
        if err is None:
            raise
        print(f"{type(err).__name__}: {err.message}", file=sys.stderr)
        sys.exit(2)
