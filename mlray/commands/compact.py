"""CLI: ``mlray features compact``: one sorted file per entity bucket of each offline table."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from mlray.cli_support import ConfigOpt, handle_errors, print_rows, settings_from

if TYPE_CHECKING:
    from mlray.offline.compaction import CompactResult


def register(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add ``mlray features compact``."""

    @groups["features"].command("compact")
    @handle_errors
    def features_compact(
        view: list[str] = typer.Option(
            None, "--view", help="Only these views (repeatable; default: every stored view)."
        ),
        min_files: int = typer.Option(
            2, min=1, help="Compact buckets with at least this many files (1: re-sort all)."
        ),
        config: Path = ConfigOpt,
    ) -> None:
        """Rewrite each bucket of the offline tables into one sorted file, one commit per view."""
        from mlray.store import FeatureStore

        fs = FeatureStore(settings_from(config))
        rows = [result_row(r) for r in fs.compact_all(view or None, min_files=min_files)]
        print_rows("compaction", rows)


def result_row(r: CompactResult) -> dict[str, object]:
    return {
        "view": r.view,
        "buckets rewritten": r.buckets,
        "files before": r.files_before,
        "files after": r.files_after,
        "rows": r.rows,
        "version": r.version,
        "seconds": round(r.seconds, 1),
    }
