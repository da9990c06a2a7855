"""Feature definitions: entities, stored and request-time views, services, the repository."""

from mlray.features.entity import Entity
from mlray.features.feature_view import AVAILABLE_TIME, EVENT_TIME, FeatureRef, FeatureView, Field
from mlray.features.on_demand import OnDemandFeatureView
from mlray.features.repository import FeatureRepository, FeatureService
from mlray.features.times import TIMESTAMP

__all__ = [
    "AVAILABLE_TIME",
    "EVENT_TIME",
    "TIMESTAMP",
    "Entity",
    "FeatureRef",
    "FeatureRepository",
    "FeatureService",
    "FeatureView",
    "Field",
    "OnDemandFeatureView",
]
