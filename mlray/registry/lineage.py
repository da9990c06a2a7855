"""Lineage: the tags every registered model version carries, so it can be traced and reproduced.

Tag names are stable (monitoring, serving and tests read them):

==============================  ==========================================================
``mlray.training_data_hash``    SHA-256 of the training set's rows (canonical order)
``mlray.delta_versions``        JSON ``{view: version, ..., "labels": version}`` read
``mlray.feature_schema_hash``   hash of the feature definitions (stored and on-demand)
``mlray.code_version``          git SHA of the code, or ``mlray-<version>`` outside git
``mlray.features``              JSON list of ``view:feature`` refs, in input order
``mlray.labels_uri``            the labels table
``mlray.split``                 JSON: validation and test start times, rows per slice
``mlray.run_name``              the pipeline run
==============================  ==========================================================
"""

from __future__ import annotations

import json
from typing import Any

from mlray.config import code_version

TAG_DATA_HASH = "mlray.training_data_hash"
TAG_DELTA_VERSIONS = "mlray.delta_versions"
TAG_SCHEMA_HASH = "mlray.feature_schema_hash"
TAG_CODE_VERSION = "mlray.code_version"
TAG_FEATURES = "mlray.features"
TAG_LABELS = "mlray.labels_uri"
TAG_SPLIT = "mlray.split"
TAG_RUN_NAME = "mlray.run_name"
TAG_DECISION = "mlray.decision"
TAG_DECISION_REASON = "mlray.decision_reason"


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
    return tags
