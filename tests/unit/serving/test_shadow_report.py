"""Shadow report figures on hand-made scores, each expected value worked out by hand."""

from __future__ import annotations

import base64
import math

import numpy as np
import pyarrow as pa
import pytest

from mlray.serving.shadow_render import to_html
from mlray.serving.shadow_report import (
    average_ranks,
    build_report,
    pair_figures,
    pearson,
    spearman,
    split_pairs,
)

# Five requests with ties on both sides.
CHAMPION = [0.1, 0.4, 0.6, 0.6, 0.9]
SHADOW = [0.2, 0.4, 0.4, 0.7, 0.8]


def test_average_ranks_share_the_mean_rank_of_a_tie() -> None:
    assert average_ranks(np.array([5.0, 1.0, 5.0])).tolist() == [2.5, 1.0, 2.5]
    assert average_ranks(np.array([3.0, 3.0, 3.0])).tolist() == [2.0, 2.0, 2.0]
    assert average_ranks(np.array(CHAMPION)).tolist() == [1.0, 2.0, 3.5, 3.5, 5.0]
    assert average_ranks(np.array(SHADOW)).tolist() == [1.0, 2.5, 2.5, 4.0, 5.0]


def test_spearman_with_ties() -> None:
    # ranks [1, 2, 3.5, 3.5, 5] and [1, 2.5, 2.5, 4, 5], both of mean 3:
    # deviations [-2, -1, .5, .5, 2] and [-2, -.5, -.5, 1, 2];
    # sum of products 4 + .5 - .25 + .5 + 4 = 8.75, sums of squares 9.5 and 9.5.
    assert spearman(np.array(CHAMPION), np.array(SHADOW)) == pytest.approx(8.75 / 9.5)
    assert spearman(np.array([1.0, 2.0, 3.0]), np.array([30.0, 20.0, 10.0])) == pytest.approx(-1)


def test_pearson() -> None:
    # deviations from .52 and .5: [-.42, -.12, .08, .08, .38] and [-.3, -.1, -.1, .2, .3];
    # sum of products .26, sums of squares .348 and .24.
    expected = 0.26 / math.sqrt(0.348 * 0.24)
    assert pearson(np.array(CHAMPION), np.array(SHADOW)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("a", "b"),
    [([0.3], [0.4]), ([0.5, 0.5, 0.5], [0.1, 0.2, 0.3]), ([0.1, 0.2], [0.7, 0.7]), ([], [])],
)
def test_correlations_are_nan_below_two_rows_or_for_constant_scores(a, b) -> None:
    assert math.isnan(spearman(np.array(a), np.array(b)))
    assert math.isnan(pearson(np.array(a), np.array(b)))


def test_pair_figures() -> None:
    figs = pair_figures(np.array(CHAMPION), np.array(SHADOW), threshold=0.5)
    # |diff| = [.1, 0, .2, .1, .1]; decisions at .5: [F, F, T, T, T] vs [F, F, F, T, T].
    assert figs["rows"] == 5
    assert figs["mean_abs_diff"] == pytest.approx(0.1)
    assert figs["max_abs_diff"] == pytest.approx(0.2)
    assert figs["flip_share"] == pytest.approx(1 / 5)
    assert figs["champion_mean"] == pytest.approx(0.52)
    assert figs["shadow_mean"] == pytest.approx(0.5)
    assert figs["spearman"] == pytest.approx(8.75 / 9.5)


def test_flip_share_counts_a_score_equal_to_the_threshold_as_positive() -> None:
    c, s = np.array([0.5, 0.2, 0.8, 0.3]), np.array([0.49, 0.2, 0.5, 0.6])
    # decisions at .5: [T, F, T, F] vs [F, F, T, T]: rows 0 and 3 flip.
    assert pair_figures(c, s, 0.5)["flip_share"] == pytest.approx(0.5)
    assert pair_figures(c, s, 0.1)["flip_share"] == 0.0


def test_no_rows_gives_nan_figures() -> None:
    figs = pair_figures(np.array([]), np.array([]), 0.5)
    assert figs["rows"] == 0
    assert all(math.isnan(v) for k, v in figs.items() if k != "rows")


def _rows(items: list[tuple[int, str, str, str, float, float]]) -> pa.Table:
    cols = ["request_time", "model_name", "model_version", "shadow_version", "score"]
    cols.append("shadow_score")
    arrays = [list(c) for c in zip(*items, strict=True)]
    table = pa.table(dict(zip(cols, arrays, strict=True)))
    return table.set_column(0, "request_time", table["request_time"].cast(pa.timestamp("us")))


def test_split_pairs_groups_by_versions_and_orders_pairs_by_last_request() -> None:
    rows = _rows(
        [(40, "m", "4", "5", 0.3, 0.35)]
        + [(t, "m", "3", "4", c, s) for t, c, s in zip(range(5), CHAMPION, SHADOW, strict=True)]
        + [(20, "m", "4", "5", 0.7, 0.6)]
    )
    pairs = split_pairs(rows)
    assert [(p.model_version, p.shadow_version) for p in pairs] == [("3", "4"), ("4", "5")]
    assert pairs[0].champion.tolist() == CHAMPION and pairs[0].shadow.tolist() == SHADOW
    assert pairs[1].champion.tolist() == [0.7, 0.3]  # in request order
    report = build_report(pairs, "log", 0.5)
    assert report.pairs[0]["mean_abs_diff"] == pytest.approx(0.1)
    # |diff| .1 and .05; no flips; two rows in the same order: rank correlation 1.
    assert report.pairs[1]["mean_abs_diff"] == pytest.approx(0.075)
    assert report.pairs[1]["flip_share"] == 0.0
    assert report.pairs[1]["spearman"] == pytest.approx(1.0)


def test_report_json_has_no_nan_and_html_embeds_two_plots_per_pair() -> None:
    rows = _rows([(0, "m", "1", "2", 0.5, 0.4)])  # one row: correlations are NaN
    pairs = split_pairs(rows)
    report = build_report(pairs, "log", 0.5)
    body = report.to_dict()
    assert body["pairs"][0]["spearman"] is None and body["pairs"][0]["pearson"] is None
    page = to_html(report, pairs)
    images = page.split("data:image/png;base64,")[1:]
    assert len(images) == 2
    assert all(base64.b64decode(i.split("'")[0])[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert "m v1 vs shadow v2" in page
