"""Lineage: the tags every registered model version carries, so it can be traced and reproduced.

Tag names are stable (monitoring, serving and tests read them):

==============================  ==========================================================
``mlray.training_data_hash``    SHA-256 of the training set's rows (canonical order)
``mlray.delta_versions``        JSON ``{view: version, ..., "labels": version}`` read
``mlray.feature_schema_hash``   hash of the feature definitions (stored and on-demand)
``mlray.code_version``          git SHA of the code, or ``mlray-<version>`` outside git
``mlray.features``              JSON list of ``view:feature`` refs, in input order
``mlray.labels_uri``            the labels table, relative to ``data_root`` when under it
``mlray.labels_read``           JSON: label and time columns, kept columns, time window
``mlray.split``                 JSON: validation and test start times, rows per slice
``mlray.run_name``              the pipeline run
``mlray.int8``                  ``kept``, ``rejected`` or ``skipped``: the INT8 export
``mlray.int8_reason``           why, with both AUCs and the limit
``test_<metric>``               the test-slice metrics (``test_auc``, ``test_log_loss``...)
==============================  ==========================================================

Paths are recorded relative to the data root (``raw/impressions``), so a
moved or copied data root still resolves them (:func:`resolve_path`); a table
outside the data root keeps its absolute path or URI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlray.config import code_version

TAG_DATA_HASH = "mlray.training_data_hash"
TAG_DELTA_VERSIONS = "mlray.delta_versions"
TAG_SCHEMA_HASH = "mlray.feature_schema_hash"
TAG_CODE_VERSION = "mlray.code_version"
TAG_FEATURES = "mlray.features"
TAG_LABELS = "mlray.labels_uri"
TAG_LABELS_READ = "mlray.labels_read"
# What ``mlray.labels_read`` holds: enough to read the same label rows again.
LABELS_READ = ("label", "time", "columns", "start", "end")
TAG_SPLIT = "mlray.split"
TAG_RUN_NAME = "mlray.run_name"
TAG_DECISION = "mlray.decision"
TAG_DECISION_REASON = "mlray.decision_reason"
TAG_INT8, TAG_INT8_REASON = "mlray.int8", "mlray.int8_reason"


def relative_path(uri: str, data_root: str) -> str:
    """``uri`` relative to ``data_root`` when it lies under it (``raw/impressions``).

    A local path elsewhere is made absolute (a relative one would otherwise be
    read against the data root); a URI elsewhere is kept as it is.
    """
    uri, data_root = _local(uri), _local(data_root)
    if "://" in uri or "://" in data_root:
        root = data_root.rstrip("/") + "/"
        return uri[len(root) :] if uri.startswith(root) else uri
    path = Path(uri).resolve()
    try:
        return path.relative_to(Path(data_root).resolve()).as_posix()
    except ValueError:
        return str(path)


def _local(uri: str) -> str:
    """A ``file://`` URI as the local path it names (Delta reports tables as such URIs)."""
    return uri[len("file://") :] if uri.startswith("file:///") else uri


def resolve_path(recorded: str, data_root: str) -> str:
    """A path recorded by :func:`relative_path`, under ``data_root`` (as it is now)."""
    if "://" in recorded or Path(recorded).is_absolute():
        return recorded
    if "://" in data_root:
        return f"{data_root.rstrip('/')}/{recorded}"
    return str(Path(data_root).resolve() / recorded)


def lineage_tags(
    lineage: dict[str, Any],
    feature_refs: list[str],
    run_name: str,
    split: dict[str, Any] | None = None,
    code: str | None = None,
) -> dict[str, str]:
    """The lineage tags of a run / model version, as strings.

    Args:
        lineage: from :class:`~mlray.training.dataset.TrainingData` (views, labels, hashes).
        feature_refs: the model's ``view:feature`` refs, in input order.
        run_name: the pipeline run's name.
        split: the time split's boundaries and slice sizes, when known.
        code: the code version the run started with (default: the current one).
    """
    versions = dict(lineage.get("views", {}))
    labels = lineage.get("labels", {})
    versions["labels"] = labels.get("version")
    tags = {
        TAG_DATA_HASH: lineage.get("content_hash", ""),
        TAG_DELTA_VERSIONS: json.dumps(versions, sort_keys=True),
        TAG_SCHEMA_HASH: lineage.get("feature_schema_hash", ""),
        TAG_CODE_VERSION: code or code_version(),
        TAG_FEATURES: json.dumps(feature_refs),
        TAG_LABELS: str(labels.get("uri", "")),
        TAG_RUN_NAME: run_name,
    }
    if split is not None:
        tags[TAG_SPLIT] = json.dumps(split, sort_keys=True, default=str)
    read = {k: labels[k] for k in LABELS_READ if k in labels}
    if read:
        tags[TAG_LABELS_READ] = json.dumps(read, sort_keys=True, default=str)
    return tags
