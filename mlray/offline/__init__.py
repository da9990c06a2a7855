"""The offline side: the point-in-time join, the bucketed Delta store, label tables, training sets.

The public names below import lazily, so ``import mlray.offline.bucketing``
(or any other small module) does not pull in Ray and polars.

>>> from mlray.offline import point_in_time_join
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlray.offline.export import check_output, write_training_set
    from mlray.offline.labels import LabelSource, find_labels, read_labels
    from mlray.offline.pit_join import point_in_time_join
    from mlray.offline.plan import TrainingPlan, plan_training_set
    from mlray.offline.training_set import TrainingSet, get_training_data

_WHERE = {
    "point_in_time_join": "mlray.offline.pit_join",
    "TrainingSet": "mlray.offline.training_set",
    "get_training_data": "mlray.offline.training_set",
    "TrainingPlan": "mlray.offline.plan",
    "plan_training_set": "mlray.offline.plan",
    "LabelSource": "mlray.offline.labels",
    "find_labels": "mlray.offline.labels",
    "read_labels": "mlray.offline.labels",
    "check_output": "mlray.offline.export",
    "write_training_set": "mlray.offline.export",
}
__all__ = [
    "LabelSource",
    "TrainingPlan",
    "TrainingSet",
    "check_output",
    "find_labels",
    "get_training_data",
    "plan_training_set",
    "point_in_time_join",
    "read_labels",
    "write_training_set",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mlray.offline' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
