"""Materialize features to the online store.

Run (``data_root`` absolute or a URI: the job runs in an uploaded copy of ``.``)::

    ray job submit --address http://127.0.0.1:8265 --working-dir . \\
        --runtime-env-json '{"env_vars": {"MLRAY_DATA_ROOT": "'$PWD'/mlray-data"}}' \\
        -- python jobs/materialize.py [--end ...] [--incremental]

Without ``--end`` the as-of time is now; ``--incremental`` only recomputes
entities that changed since each view's last run.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime

sys.path.insert(0, os.path.dirname(__file__))

from _entry import run_job  # noqa: E402

from mlray.cli_support import parse_time  # noqa: E402
from mlray.config import Settings  # noqa: E402
from mlray.store import FeatureStore  # noqa: E402


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--end", help="as-of time, e.g. 2026-01-11T00:00:00Z (default: now)")
    p.add_argument("--view", action="append", help="only this view (repeatable)")
    p.add_argument(
        "--incremental", action="store_true", help="only entities changed since the last run"
    )


def main(settings: Settings, args: argparse.Namespace) -> None:
    fs = FeatureStore(settings)
    end = parse_time(args.end, "end") if args.end else datetime.now(UTC)
    run = fs.materialize_incremental if args.incremental else fs.materialize
    for r in run(end, args.view):
        print(
            f"{r.view}: {r.entities} entities as of {r.end_time.isoformat()}, {r.written} written, "
            f"{r.unchanged} unchanged, {r.older} older kept back, {r.expired} expired, "
            f"table version {r.table_version}, {r.seconds:.1f} s"
        )
    fs.close()


if __name__ == "__main__":
    run_job(__doc__ or "", add_args, main)
