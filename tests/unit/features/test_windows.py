"""Window snapshots: exact values at every boundary where a window changes."""

from datetime import timedelta

import pandas as pd

from mlray.demo.features import item_stats_transform, smoothed_ctr, user_activity_transform
from mlray.features.windows import window_snapshots


def events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [1, 1, 2],
            "item_id": [5, 5, 6],
            "event_time": pd.to_datetime(
                ["2026-01-01 10:15", "2026-01-01 10:45", "2026-01-01 12:30"], utc=True
            ),
            "n": [1.0, 1.0, 1.0],
            "clicked": [False, True, True],
            "price": [5.0, 7.0, 3.0],
        }
    )


def test_snapshots_at_enter_and_leave_boundaries():
    snap = window_snapshots(
        events(),
        keys=["user_id"],
        time="event_time",
        sums={"imp": "n"},
        windows={"1h": timedelta(hours=1), "3h": timedelta(hours=3)},
        last=["price"],
    )
    rows = {
        (r.user_id, r.event_time.hour): (r.imp_1h, r.imp_3h, r.price) for r in snap.itertuples()
    }
    assert rows == {
        (1, 11): (2.0, 2.0, 7.0),  # both events entered
        (1, 12): (0.0, 2.0, 7.0),  # left the 1h window
        (1, 14): (0.0, 0.0, 7.0),  # left the 3h window
        (2, 13): (1.0, 1.0, 3.0),
        (2, 14): (0.0, 1.0, 3.0),
        (2, 16): (0.0, 0.0, 3.0),
    }


def test_snapshot_excludes_events_at_the_boundary_itself():
    ev = events().iloc[:1].assign(event_time=pd.to_datetime(["2026-01-01 11:00"], utc=True))
    snap = window_snapshots(
        ev,
        keys=["user_id"],
        time="event_time",
        sums={"imp": "n"},
        windows={"1h": timedelta(hours=1)},
    )
    assert snap.event_time.dt.hour.tolist() == [12, 13] and snap.imp_1h.tolist() == [1.0, 0.0]


def test_user_activity_transform_values():
    out = user_activity_transform(events())
    first = out[(out.user_id == 1)].iloc[0]
    assert (first.impressions_1h, first.clicks_1h, first.impressions_7d) == (2, 1, 2)
    assert first.ctr_7d == smoothed_ctr(1, 2) and first.usual_price_7d == 6.0
    assert set(out.columns) >= {"user_id", "event_time", "ctr_24h", "usual_price_7d"}


def test_item_stats_current_price_is_last_shown():
    out = item_stats_transform(events())
    assert out[out.item_id == 5].current_price.iloc[0] == 7.0
    assert out[out.item_id == 5].popularity_7d.iloc[0] == 2


def test_empty_input_gives_empty_frame():
    assert window_snapshots(
        events().iloc[:0],
        keys=["user_id"],
        time="event_time",
        sums={"imp": "n"},
        windows={"1h": timedelta(hours=1)},
    ).empty
