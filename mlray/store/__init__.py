"""The feature store: the one object users hold to build, join, materialize and read features.

Quick start::

    from mlray import load_settings
    from mlray.store import FeatureStore

    fs = FeatureStore(load_settings())
    fs.build_features(start, end)
    ts = fs.get_training_data(labels, features=["user_activity:ctr_7d", "item_stats:ctr_24h"])
    ts.dataset.show(3)
    fs.materialize(end)
    fs.get_online_features({"user_id": 7, "item_id": 3}, "ctr_model_v1").rows

:class:`FeatureStore` sits above the offline and online stores;
:mod:`mlray.store.materialize` is the one place that reads the offline tables
and writes the online store.
"""

from mlray.store.feature_store import FeatureStore
from mlray.store.materialize import MaterializeResult, materialize

__all__ = ["FeatureStore", "MaterializeResult", "materialize"]
