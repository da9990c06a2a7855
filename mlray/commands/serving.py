"""CLI: ``mlray serve`` (the serving app in the foreground) and ``mlray promote VERSION``."""

from __future__ import annotations

import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer

from mlray.cli_support import ConfigOpt, handle_errors, settings_from


def serve_config_args(path: Path) -> dict[str, Any]:
    """The ``args`` of the first application in a ``serve deploy`` config file.

    Raises:
        ConfigError: the file is unreadable or has no application.
    """
    from mlray.config import read_yaml_mapping
    from mlray.errors import ConfigError

    body = read_yaml_mapping(path, "serve config")
    apps = body.get("applications") or []
    if not apps or not isinstance(apps[0], dict):
        raise ConfigError(f"Serve config {path} has no 'applications' list; see serve_configs/.")
    return dict(apps[0].get("args") or {})


def register(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add ``serve`` and ``promote``."""

    @app.command("serve")
    @handle_errors
    def serve_cmd(
        serve_config: Path = typer.Option(
            None, exists=True, dir_okay=False, help="A serve_configs/*.yaml; its first app's args."
        ),
        model: str = typer.Option(
            None, help="Registered model (default: the config's, ctr_model)."
        ),
        shadow: str = typer.Option(None, help="Shadow alias or version; 'none' for no shadow."),
        host: str = typer.Option("127.0.0.1", help="HTTP host of the Serve proxy."),
        port: int = typer.Option(8000, min=1, max=65535, help="HTTP port of the Serve proxy."),
        config: Path = ConfigOpt,
    ) -> None:
        """Serve the champion (and its shadow) over HTTP until Ctrl-C."""
        from ray import serve

        from mlray.ray_session import ensure_ray
        from mlray.serving.app import build_app, parse_args

        args = serve_config_args(serve_config) if serve_config else {}
        if model:
            args["model_name"] = model
        if shadow:
            args["shadow"] = None if shadow.lower() == "none" else shadow
        if config:
            args["config_file"] = str(config)
        parsed = parse_args(args)  # cheap checks before Ray starts
        # Ctrl-C reaches the whole process group: Ray's processes, started while SIGINT is
        # ignored, inherit that and outlive it, so the app can still shut down gracefully.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            ensure_ray(settings_from(config))
            serve.start(http_options={"host": host, "port": port})
        finally:
            signal.signal(signal.SIGINT, previous)
        try:
            serve.run(build_app(parsed), name="mlray", route_prefix="/", blocking=False)
            typer.echo(
                f"serving {parsed.model_name} on http://{host}:{port} (docs: /docs); Ctrl-C stops"
            )
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            typer.echo("stopping: committing the prediction log ...")
            serve.delete("mlray")  # graceful: replicas and the committer flush their rows
            serve.shutdown()
            typer.echo("stopped")

    @app.command("promote")
    @handle_errors
    def promote_cmd(
        version: str = typer.Argument(..., help="The version to promote, e.g. 3."),
        model: str = typer.Option("ctr_model", help="Registered model."),
        alias: str = typer.Option("champion", help="The alias to move."),
        config: Path = ConfigOpt,
    ) -> None:
        """Move an alias (default: champion) to VERSION; serving replicas pick it up themselves."""
        from mlray.registry.tracking import registry_client
        from mlray.registry.versions import set_alias, version_for_alias

        client = registry_client(settings_from(config))
        before = version_for_alias(client, model, alias)
        set_alias(client, model, alias, version)
        was = f"v{before.version}" if before is not None else "none"
        typer.echo(f"{model} {alias}: {was} -> v{version}")
