"""``mlray demo generate``: a window ending now by default, --start/--end/--days, row counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from deltalake import DeltaTable
from typer.testing import CliRunner

from mlray.cli import app
from mlray.demo.window import DEFAULT_DAYS, current_hour, demo_window
from mlray.errors import ConfigError

NOW = datetime(2026, 11, 30, 8, 41, 9, 123, tzinfo=UTC)
HOUR = datetime(2026, 11, 30, 8, tzinfo=UTC)
DAY = timedelta(days=1)


def generate(tmp_path, *args: str):
    env = {"MLRAY_DATA_ROOT": str(tmp_path / "data"), "COLUMNS": "200"}
    small = ["--users", "30", "--items", "20", "--seed", "1"]
    return CliRunner().invoke(app, ["demo", "generate", *small, *args], env=env)


def test_the_window_ends_at_the_current_hour_by_default():
    assert current_hour(NOW) == HOUR
    assert demo_window(now=NOW) == (HOUR - DEFAULT_DAYS * DAY, DEFAULT_DAYS)
    assert demo_window(days=3, now=NOW) == (HOUR - 3 * DAY, 3)


def test_start_end_and_days_fix_the_window():
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 4, tzinfo=UTC)
    assert demo_window(start=start, now=NOW) == (start, DEFAULT_DAYS)
    assert demo_window(start=start, days=2, now=NOW) == (start, 2)
    assert demo_window(end=end, days=2, now=NOW) == (end - 2 * DAY, 2)
    assert demo_window(start=start, end=end, now=NOW) == (start, 3)
    assert demo_window(start=start, end=end, days=3, now=NOW) == (start, 3)


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"start": datetime(2026, 1, 1)}, "no time zone"),
        ({"days": 0}, "days must be an integer >= 1"),
        (
            {"start": datetime(2026, 1, 2, tzinfo=UTC), "end": datetime(2026, 1, 1, tzinfo=UTC)},
            "whole, positive number of days",
        ),
        (
            {
                "start": datetime(2026, 1, 1, tzinfo=UTC),
                "end": datetime(2026, 1, 2, 12, tzinfo=UTC),
            },
            "whole, positive number of days",
        ),
        (
            {
                "start": datetime(2026, 1, 1, tzinfo=UTC),
                "end": datetime(2026, 1, 3, tzinfo=UTC),
                "days": 3,
            },
            "span 2 days, not --days 3",
        ),
    ],
)
def test_an_impossible_window_is_a_config_error(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        demo_window(now=NOW, **kwargs)


def test_cli_default_ends_at_the_current_hour(tmp_path):
    before = current_hour()
    r = generate(tmp_path, "--days", "2")
    after = current_hour()
    assert r.exit_code == 0, r.output
    end = next(h for h in (before, after) if f".. {h.isoformat()}" in r.output)
    assert f"window: {(end - 2 * DAY).isoformat()} .. {end.isoformat()}" in r.output
    t0, t1 = ((end - 2 * DAY).isoformat(), end.isoformat())
    assert f"next: mlray features build --start {t0[:-6]}Z --end {t1[:-6]}Z" in r.output
    events = DeltaTable(str(tmp_path / "data" / "raw" / "impressions")).to_pandas()["event_time"]
    assert events.min() >= end - 2 * DAY and events.max() < end


def test_cli_start_and_end(tmp_path):
    r = generate(tmp_path, "--start", "2026-01-01T00:00:00Z", "--end", "2026-01-04T00:00:00Z")
    assert r.exit_code == 0, r.output
    assert "window: 2026-01-01T00:00:00+00:00 .. 2026-01-04T00:00:00+00:00" in r.output
    r = generate(tmp_path, "--end", "2026-01-04T00:00:00Z", "--days", "1")
    assert "window: 2026-01-03T00:00:00+00:00 .. 2026-01-04T00:00:00+00:00" in r.output
    r = generate(tmp_path, "--start", "2026-01-01T00:00:00Z", "--end", "2026-01-01T05:00:00Z")
    assert r.exit_code == 2 and "whole, positive number of days" in r.output


def test_cli_prints_the_catalog_table_rows(tmp_path):
    r = generate(tmp_path, "--start", "2026-01-01T00:00:00Z", "--days", "1")
    assert r.exit_code == 0, r.output
    catalog = DeltaTable(str(tmp_path / "data" / "raw" / "item_catalog")).to_pandas()
    assert len(catalog) >= 20  # one row per item, plus any price change
    line = next(ln for ln in r.output.splitlines() if "item_catalog" in ln)
    assert line.split("│")[2].strip() == str(len(catalog))
