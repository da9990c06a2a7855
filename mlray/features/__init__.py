"""Feature definitions: entities, feature views, services and the repository."""

from mlray.features.entity import Entity
from mlray.features.feature_view import AVAILABLE_TIME, EVENT_TIME, FeatureView, Field
from mlray.features.repository import FeatureRef, FeatureRepository, FeatureService

__all__ = [
    "AVAILABLE_TIME",
    "EVENT_TIME",
    "Entity",
    "FeatureRef",
    "FeatureRepository",
    "FeatureService",
    "FeatureView",
    "Field",
]
