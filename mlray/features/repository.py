"""The feature repository: the entities, views and services a project defines.

A repository is a Python module (``Settings.feature_repo``) whose top-level
objects are :class:`Entity`, :class:`FeatureView` and :class:`FeatureService`
instances. Loading it lints the definitions before anything runs and points
at the line that defined the offending object.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mlray.errors import DefinitionError, unknown_name
from mlray.features.entity import Entity
from mlray.features.feature_view import FeatureView


@dataclass(frozen=True)
class FeatureService:
    """A named list of ``"view:feature"`` references, e.g. what one model reads."""

    name: str
    features: tuple[str, ...]


@dataclass(frozen=True)
class FeatureRef:
    """A parsed ``"view:feature"`` reference."""

    view: str
    feature: str

    def __str__(self) -> str:
        return f"{self.view}:{self.feature}"


class FeatureRepository:
    """Lookup over a set of definitions, checked for consistency on creation."""

    def __init__(
        self,
        views: Iterable[FeatureView],
        services: Iterable[FeatureService] = (),
        *,
        origin: str = "<code>",
    ) -> None:
        self.origin = origin
        self.views: dict[str, FeatureView] = {}
        for v in views:
            if v.name in self.views:
                raise DefinitionError(
                    f"{origin}: feature view {v.name!r} is defined twice "
                    f"({self.views[v.name].defined_at} and {v.defined_at})."
                )
            self.views[v.name] = v
        self.entities: dict[str, Entity] = {}
        for v in self.views.values():
            for e in v.entities:
                known = self.entities.setdefault(e.name, e)
                if known != e:
                    raise DefinitionError(
                        f"{origin}: entity {e.name!r} has two different definitions "
                        f"(one used by view {v.name!r}); define it once and reuse it."
                    )
        self.services = {s.name: s for s in services}
        for s in self.services.values():
            self.resolve(s.features)

    @classmethod
    def from_module(cls, module_name: str) -> FeatureRepository:
        """Import ``module_name`` and collect its definitions.

        Raises:
            DefinitionError: the module cannot be imported or its definitions clash.
        """
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise DefinitionError(
                f"Cannot import feature repository module {module_name!r}: {e}. "
                "Set feature_repo in mlray.yaml or MLRAY_FEATURE_REPO to an importable module."
            ) from e
        objs = list(vars(module).values())
        views = [o for o in objs if isinstance(o, FeatureView)]
        services = [o for o in objs if isinstance(o, FeatureService)]
        if not views:
            raise DefinitionError(
                f"Feature repository {module_name!r} defines no FeatureView at module level."
            )
        return cls(views, services, origin=module_name)

    def view(self, name: str) -> FeatureView:
        try:
            return self.views[name]
        except KeyError:
            raise unknown_name(
                "feature view", name, self.views, f"in repository {self.origin}"
            ) from None

    def all_refs(self) -> list[str]:
        return [f"{v.name}:{f}" for v in self.views.values() for f in v.feature_names]

    def resolve(self, features: str | Sequence[str]) -> list[FeatureRef]:
        """Parse and check references; a string names a feature service.

        Raises:
            NotFoundError: an unknown service, view or feature, with close valid names.
            DefinitionError: a reference is not ``"view:feature"``.
        """
        if isinstance(features, str):
            if features not in self.services:
                raise unknown_name(
                    "feature service", features, self.services, f"in repository {self.origin}"
                )
            features = self.services[features].features
        refs: list[FeatureRef] = []
        for raw in features:
            view_name, sep, feat = raw.partition(":")
            if not sep or not view_name or not feat:
                raise DefinitionError(
                    f"Feature reference {raw!r} must look like 'view:feature', "
                    f"e.g. {self.all_refs()[0]!r}."
                )
            view = self.views.get(view_name)
            if view is None or feat not in view.feature_names:
                raise unknown_name("feature", raw, self.all_refs(), f"in repository {self.origin}")
            ref = FeatureRef(view_name, feat)
            if ref not in refs:
                refs.append(ref)
        return refs

    def schema_hash(self, views: Iterable[str] | None = None) -> str:
        """One hash over the schema hashes of the named (default: all) views."""
        names = sorted(views if views is not None else self.views)
        h = hashlib.sha256()
        for n in names:
            h.update(f"{n}={self.view(n).schema_hash()};".encode())
        return h.hexdigest()


def group_by_view(refs: Sequence[FeatureRef]) -> dict[str, list[str]]:
    """``{view: [feature, ...]}`` in first-seen order."""
    out: dict[str, list[str]] = {}
    for r in refs:
        out.setdefault(r.view, []).append(r.feature)
    return out
