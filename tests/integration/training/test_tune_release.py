"""The Tune callback's release of a stopped trial's worker reservation."""

from __future__ import annotations

import ray
from ray.util.placement_group import placement_group, placement_group_table

from mlray.training.tune import release_placement_group


def test_a_leftover_worker_reservation_is_released_once(ray_session: None):
    pg = placement_group([{"CPU": 1}])
    ray.get(pg.ready(), timeout=60)
    assert release_placement_group(pg.id.hex())
    assert placement_group_table(pg)["state"] == "REMOVED"
    assert not release_placement_group(pg.id.hex())
