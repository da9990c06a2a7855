"""Lineage tags are complete, strings, and carry the Delta versions and hashes given."""

from __future__ import annotations

import json

from mlray.config import code_version
from mlray.registry import lineage


def test_lineage_tags_carry_versions_hashes_and_code():
    info = {
        "views": {"user_activity": 3, "item_stats": 1},
        "labels": {"uri": "/d/raw/impressions", "version": 7},
        "content_hash": "abc",
        "feature_schema_hash": "def",
    }
    tags = lineage.lineage_tags(
        info,
        ["user_activity:ctr_7d", "item_stats:ctr_24h"],
        "run-1",
        {"test_start": "2026-01-09T00:00:00+00:00", "rows": {"test": 5}},
    )
    assert all(isinstance(v, str) for v in tags.values())
    assert json.loads(tags[lineage.TAG_DELTA_VERSIONS]) == {
        "user_activity": 3,
        "item_stats": 1,
        "labels": 7,
    }
    assert tags[lineage.TAG_DATA_HASH] == "abc" and tags[lineage.TAG_SCHEMA_HASH] == "def"
    assert tags[lineage.TAG_CODE_VERSION] == code_version()
    assert json.loads(tags[lineage.TAG_FEATURES]) == ["user_activity:ctr_7d", "item_stats:ctr_24h"]
    assert (
        tags[lineage.TAG_LABELS] == "/d/raw/impressions" and tags[lineage.TAG_RUN_NAME] == "run-1"
    )
    assert json.loads(tags[lineage.TAG_SPLIT])["rows"] == {"test": 5}
