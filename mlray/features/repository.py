"""The feature repository: the entities, views and services a project defines.

A repository is a Python module (``Settings.feature_repo``) whose top-level
objects are :class:`Entity`, :class:`FeatureView` (stored features),
:class:`~mlray.features.on_demand.OnDemandFeatureView` (request-time
features) and :class:`FeatureService` instances. Loading it lints the
definitions before anything runs and points at the line that defined the
offending object.

A feature is named ``"view:feature"`` whichever kind its view is; the
repository is the one place that resolves such names (:meth:`FeatureRepository.resolve`)
and finds their declared fields (:meth:`FeatureRepository.field`).
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType

from mlray.errors import DefinitionError, MlrayError, one_line, raised_at, unknown_name
from mlray.features.entity import Entity
from mlray.features.feature_view import FeatureRef, FeatureView, Field
from mlray.features.on_demand import OnDemandFeatureView

__all__ = ["FeatureRef", "FeatureRepository", "FeatureService", "group_by_view"]


@dataclass(frozen=True)
class FeatureService:
    """Named ``"view:feature"`` refs (stored or request-time), e.g. what one model reads."""

    name: str
    features: tuple[str, ...]


class FeatureRepository:
    """Lookup over a set of definitions, checked for consistency on creation.

    Args:
        views: the stored feature views.
        services: named feature lists.
        on_demand: the request-time feature views.
        origin: where the definitions come from (a module name), for messages.

    Raises:
        DefinitionError: a name is defined twice, an entity two ways, or a
            reference is malformed.
        NotFoundError: a service or on-demand view names an unknown feature.
    """

    def __init__(
        self,
        views: Iterable[FeatureView],
        services: Iterable[FeatureService] = (),
        *,
        on_demand: Iterable[OnDemandFeatureView] = (),
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
        self.entities = _entities(self.views.values(), origin)
        self.on_demand: dict[str, OnDemandFeatureView] = {}
        for od in on_demand:
            if od.name in self.views or od.name in self.on_demand:
                raise DefinitionError(
                    f"{od.where}: the name is already used by another feature view; rename it."
                )
            for s in od.sources:
                if FeatureRef.parse(s) is None or s.split(":", 1)[0] not in self.views:
                    # Only stored features can feed a request-time transform.
                    raise unknown_name(
                        "stored feature", s, self._stored_refs(), f"(a source of {od.where})"
                    )
            self.resolve(list(od.sources))
            self.on_demand[od.name] = od
        self.services = {s.name: s for s in services}
        for service in self.services.values():
            self.resolve(service.features)

    @classmethod
    def from_module(cls, module_name: str) -> FeatureRepository:
        """Import ``module_name`` and collect its stored and request-time views and services.

        Raises:
            DefinitionError: the module is not found or fails to import (the
                message names the file and line), defines no feature view, or
                its definitions clash.
        """
        module = _import_repository(module_name)
        objs = list(vars(module).values())
        views = [o for o in objs if isinstance(o, FeatureView)]
        if not views:
            raise DefinitionError(
                f"Feature repository {module_name!r} defines no FeatureView at module level."
            )
        return cls(
            views,
            [o for o in objs if isinstance(o, FeatureService)],
            on_demand=[o for o in objs if isinstance(o, OnDemandFeatureView)],
            origin=module_name,
        )

    # -- lookup ----------------------------------------------------------------------
    def view(self, name: str) -> FeatureView:
        """The stored feature view ``name``.

        Raises:
            NotFoundError: no such stored view, with close valid names.
        """
        try:
            return self.views[name]
        except KeyError:
            raise unknown_name(
                "feature view", name, self.views, f"in repository {self.origin}"
            ) from None

    def all_refs(self) -> list[str]:
        """Every feature's ``"view:feature"``: stored first, then request-time."""
        od = [f"{v.name}:{f}" for v in self.on_demand.values() for f in v.feature_names]
        return self._stored_refs() + od

    def _stored_refs(self) -> list[str]:
        return [f"{v.name}:{f}" for v in self.views.values() for f in v.feature_names]

    def resolve(self, features: str | Sequence[str]) -> list[FeatureRef]:
        """Parse and check references to stored and request-time features; a string names a service.

        Returns:
            The refs in the given order, each once.

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
            ref = self._ref(raw)
            if ref not in refs:
                refs.append(ref)
        return refs

    def _ref(self, raw: str) -> FeatureRef:
        ref = FeatureRef.parse(raw)
        if ref is None:
            raise DefinitionError(
                f"Feature reference {raw!r} must look like 'view:feature', "
                f"e.g. {self.all_refs()[0]!r}."
            )
        od = self.on_demand.get(ref.view)
        if od is not None:
            if ref.feature not in od.feature_names:
                valid = [f"{od.name}:{f}" for f in od.feature_names]
                raise unknown_name("feature", raw, valid, f"in {od.where}")
            return ref
        view = self.views.get(ref.view)
        if view is None or ref.feature not in view.feature_names:
            raise unknown_name("feature", raw, self.all_refs(), f"in repository {self.origin}")
        return ref

    def field(self, ref: FeatureRef | str) -> Field:
        """The declared field of a stored or request-time feature.

        Raises:
            NotFoundError: an unknown view or feature, with close valid names.
            DefinitionError: a string reference is not ``"view:feature"``.
        """
        r = self._ref(str(ref))
        od = self.on_demand.get(r.view)
        return od.field(r.feature) if od is not None else self.views[r.view].field(r.feature)

    def is_on_demand(self, ref: FeatureRef) -> bool:
        """Whether ``ref`` is a request-time feature (computed, not stored)."""
        return ref.view in self.on_demand

    def schema_hash(self, views: Iterable[str] | None = None) -> str:
        """One hash over the schema hashes of the named views (default: every stored view).

        Request-time views among ``views`` are folded in after the stored ones,
        so a training set's hash changes when either kind of definition does.
        """
        names = list(views if views is not None else self.views)
        h = hashlib.sha256()
        for n in sorted(n for n in names if n not in self.on_demand):
            h.update(f"{n}={self.view(n).schema_hash()};".encode())
        on_demand = sorted(n for n in names if n in self.on_demand)
        if not on_demand:
            return h.hexdigest()
        h = hashlib.sha256(h.hexdigest().encode())
        for n in on_demand:
            h.update(f"{n}={self.on_demand[n].schema_hash()};".encode())
        return h.hexdigest()


def _import_repository(module_name: str) -> ModuleType:
    """Import the repository module; any failure is a :class:`DefinitionError` with file and line.

    An mlray error raised while the module runs (a definition that does not
    check out) is passed on as it is: it already names its line.
    """
    try:
        return importlib.import_module(module_name)
    except MlrayError:
        raise
    except ModuleNotFoundError as e:
        if e.name is not None and (module_name + ".").startswith(e.name + "."):
            raise DefinitionError(
                f"Cannot import feature repository module {module_name!r}: {e}. Set "
                "feature_repo in mlray.yaml or MLRAY_FEATURE_REPO to an importable module "
                "(a file in the working directory or on PYTHONPATH)."
            ) from e
        raise _import_failed(module_name, e, str(e), raised_at(e)) from e
    except SyntaxError as e:
        raise _import_failed(module_name, e, str(e.msg), f"{e.filename}:{e.lineno}") from e
    except Exception as e:  # noqa: BLE001 - whatever the module's code raised
        raise _import_failed(module_name, e, str(e), raised_at(e)) from e


def _import_failed(
    module_name: str, e: Exception, message: str, where: str | None
) -> DefinitionError:
    return DefinitionError(
        f"Feature repository module {module_name!r} fails to import: "
        f"{type(e).__name__}: {one_line(message)} (at {where}). Fix the module there."
    )


def _entities(views: Iterable[FeatureView], origin: str) -> dict[str, Entity]:
    """The entities the views use, each defined one way."""
    out: dict[str, Entity] = {}
    for v in views:
        for e in v.entities:
            known = out.setdefault(e.name, e)
            if known != e:
                raise DefinitionError(
                    f"{origin}: entity {e.name!r} has two different definitions "
                    f"(one used by view {v.name!r}); define it once and reuse it."
                )
    return out


def group_by_view(refs: Sequence[FeatureRef]) -> dict[str, list[str]]:
    """``{view: [feature, ...]}`` in first-seen order."""
    out: dict[str, list[str]] = {}
    for r in refs:
        out.setdefault(r.view, []).append(r.feature)
    return out
