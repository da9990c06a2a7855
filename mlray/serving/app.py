"""``mlray.serving.app:build_app``: the serving application, composed like the data flow.

    HTTP -> Ingress (features + champion in-process, or -> ModelDeployment) -> response
                    \\-> after the response: shadow score -> log rows -> PredictionLogger -> Delta

Use it with ``serve run serve_configs/local.yaml``, ``serve deploy
serve_configs/production.yaml`` or ``mlray serve``. The settings (data root,
online store, MLflow) come from ``mlray.yaml``/``MLRAY_*`` as everywhere in
mlray; the application's ``args`` may override them under ``settings``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ray.serve import Application

from mlray.config import Settings, load_settings
from mlray.errors import ConfigError
from mlray.serving.config import ServeArgs


def parse_args(args: dict[str, Any] | ServeArgs | None) -> ServeArgs:
    """Validate the application's arguments.

    Raises:
        ConfigError: an unknown key or a bad value, named.
    """
    if isinstance(args, ServeArgs):
        return args
    try:
        return ServeArgs.model_validate(args or {})
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'args'}: {err['msg']}" for err in e.errors()
        )
        raise ConfigError(f"Invalid serving args: {problems}") from e


def serving_settings(args: ServeArgs) -> Settings:
    """mlray's settings for the app, with the data root made absolute (replicas run elsewhere)."""
    from mlray.online import pin_online_store

    settings = load_settings(args.config_file, **args.settings)
    root = settings.data_root
    if "://" not in root:
        settings = settings.model_copy(update={"data_root": str(Path(root).resolve())})
    # The embedded Redis (no redis.url) is started here once; replicas connect to its URL.
    return pin_online_store(settings)


def check_champion(args: ServeArgs, settings: Settings) -> None:
    """Fail early, in one line, when there is no model to serve.

    Raises:
        NotFoundError: the model has no version with the champion alias.
        BackendUnavailable: the tracking store cannot be read.
    """
    from mlray.registry.download import resolve_version
    from mlray.registry.tracking import registry_client

    resolve_version(registry_client(settings), args.model_name, alias=args.champion)


def build_app(args: dict[str, Any] | ServeArgs | None = None) -> Application:
    """The serving application: ingress, model deployment (GPU shape), prediction logger.

    Args:
        args: :class:`~mlray.serving.config.ServeArgs` or its dict (unknown keys are an error).

    Raises:
        ConfigError: invalid args or settings.
        NotFoundError: no champion to serve yet.
    """
    a = parse_args(args)
    settings = serving_settings(a)
    check_champion(a, settings)
    return compose(a, settings)


def compose(a: ServeArgs, settings: Settings) -> Application:
    """Bind the deployments: ingress -> (model deployment) and the prediction logger."""
    from mlray.serving.deployments import Ingress, ModelDeployment, PredictionLogger

    # @serve.deployment turns each class into a Deployment (with .options), but mypy keeps a
    # decorated class's own type, hence the attr-defined ignores below.
    logger = PredictionLogger.options(  # type: ignore[attr-defined]
        ray_actor_options={"num_cpus": a.logger_cpus}
    ).bind(settings, a.log)
    model = None
    if a.shape == "model_deployment":
        md = a.model_deployment
        model = ModelDeployment.options(  # type: ignore[attr-defined]
            ray_actor_options={"num_gpus": md.num_gpus, "num_cpus": md.num_cpus}
        ).bind(a, settings)
    replicas: Any = a.ingress_replicas
    ingress = Ingress.options(  # type: ignore[attr-defined]
        num_replicas=replicas,
        max_ongoing_requests=a.max_ongoing_requests,
        ray_actor_options={"num_cpus": a.ingress_cpus},
    )
    return ingress.bind(a, settings, logger, model)
