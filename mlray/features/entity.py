"""Entities: the things features describe, identified by join keys."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from mlray.errors import DefinitionError


@dataclass(frozen=True)
class Entity:
    """A business object (user, item) identified by one or more join keys.

    Args:
        name: unique name, e.g. ``"user"``.
        join_keys: column names that identify one entity, e.g. ``("user_id",)``.
        dtype: Arrow type of every join key column (int64 by default).
        description: free text shown in listings.
    """

    name: str
    join_keys: tuple[str, ...]
    dtype: pa.DataType = field(default_factory=pa.int64)
    description: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.join_keys, str):
            object.__setattr__(self, "join_keys", (self.join_keys,))
        else:
            object.__setattr__(self, "join_keys", tuple(self.join_keys))
        if not self.name.isidentifier():
            raise DefinitionError(
                f"Entity name {self.name!r} must be a Python identifier (letters, digits, _)."
            )
        if not self.join_keys:
            raise DefinitionError(
                f"Entity {self.name!r} needs at least one join key, e.g. join_keys=('user_id',)."
            )
