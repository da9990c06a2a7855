"""The ``mlray`` command: every stage's sub-commands, registered the same way.

Each module in :data:`mlray.commands.STAGES` has ``register(app, groups)``;
every command's failure (an mlray error, also from inside a Ray task, or any
other exception) is printed as one red line, its traceback written to a log
file whose path is printed, and exits with status 2
(:func:`mlray.cli_support.handle_errors`).
"""

from __future__ import annotations

import importlib

import typer

from mlray.commands import STAGES

app = typer.Typer(
    help="mlray: feature store, training and serving on one Ray cluster.", no_args_is_help=True
)
groups = {
    "demo": typer.Typer(help="Synthetic click-stream demo data.", no_args_is_help=True),
    "features": typer.Typer(
        help="Feature definitions, the feature pipeline and online reads.", no_args_is_help=True
    ),
}
for _name, _group in groups.items():
    app.add_typer(_group, name=_name)


@app.callback()
def _options(
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show Ray's own logs and per-operator progress too."
    ),
) -> None:
    """mlray: feature store, training and serving on one Ray cluster."""
    from mlray.ray_session import set_verbose

    set_verbose(verbose)


def _register_stage_commands() -> None:
    for name in STAGES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name is not None and name.startswith(e.name):
                continue  # that stage is not installed in this build
            raise
        module.register(app, groups)


_register_stage_commands()


def main() -> None:  # pragma: no cover - console script entry
    app(prog_name="mlray")


if __name__ == "__main__":  # pragma: no cover
    main()
