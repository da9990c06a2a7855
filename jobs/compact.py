"""Compact the offline feature tables: one sorted file per entity bucket, one commit per view.

Run (``data_root`` absolute or a URI: the job runs in an uploaded copy of ``.``)::

    ray job submit --address http://127.0.0.1:8265 --working-dir . \\
        --runtime-env-json '{"env_vars": {"MLRAY_DATA_ROOT": "'$PWD'/mlray-data"}}' \\
        -- python jobs/compact.py [--view NAME] [--min-files N]

Schedule it after feature builds (e.g. nightly): every build or ingest adds
files to each bucket, and the point-in-time join reads a compacted bucket
without sorting it. Rows and training sets are unchanged by it.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from _entry import run_job  # noqa: E402

from mlray.config import Settings  # noqa: E402
from mlray.errors import ConfigError  # noqa: E402
from mlray.store import FeatureStore  # noqa: E402


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--view", action="append", help="only this view (repeatable)")
    p.add_argument(
        "--min-files",
        type=int,
        default=2,
        help="compact buckets with at least this many files (1: re-sort every bucket)",
    )


def main(settings: Settings, args: argparse.Namespace) -> None:
    if args.min_files < 1:
        raise ConfigError(f"--min-files must be at least 1, not {args.min_files}.")
    fs = FeatureStore(settings)
    for r in fs.compact_all(args.view, min_files=args.min_files):
        print(
            f"{r.view}: {r.buckets} buckets rewritten, {r.files_before} -> {r.files_after} files, "
            f"{r.rows} rows, table version {r.version}, {r.seconds:.1f} s"
        )
    fs.close()


if __name__ == "__main__":
    run_job(__doc__ or "", add_args, main)
