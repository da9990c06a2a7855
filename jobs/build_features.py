"""Compute feature views for a window.

Run (``data_root`` absolute or a URI: the job runs in an uploaded copy of ``.``)::

    ray job submit --address http://127.0.0.1:8265 --working-dir . \\
        --runtime-env-json '{"env_vars": {"MLRAY_DATA_ROOT": "'$PWD'/mlray-data"}}' \\
        -- python jobs/build_features.py --start ... --end ...
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from _entry import run_job  # noqa: E402

from mlray.cli_support import parse_time  # noqa: E402
from mlray.config import Settings  # noqa: E402
from mlray.store import FeatureStore  # noqa: E402


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--start", required=True, help="window start, e.g. 2026-01-01T00:00:00Z")
    p.add_argument("--end", required=True, help="window end (exclusive)")
    p.add_argument("--view", action="append", help="only this view (repeatable)")


def main(settings: Settings, args: argparse.Namespace) -> None:
    results = FeatureStore(settings).build_features(
        parse_time(args.start, "start"), parse_time(args.end, "end"), args.view
    )
    for r in results:
        print(f"{r.view}: {r.rows} rows, table version {r.version}, {r.seconds:.1f} s")


if __name__ == "__main__":
    run_job(__doc__ or "", add_args, main)
