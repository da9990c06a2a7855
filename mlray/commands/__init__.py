"""The ``mlray`` command's sub-commands, one module per stage, each with ``register(app, groups)``.

:mod:`mlray.cli` imports the modules listed in ``STAGES`` and calls their
``register`` the same way; the shared helpers live in :mod:`mlray.cli_support`.
Heavy imports happen inside each command, so ``mlray --help`` stays fast.
"""

STAGES = (
    "mlray.commands.demo",
    "mlray.commands.features",
    "mlray.commands.compact",
    "mlray.commands.online",
    "mlray.commands.training",
    "mlray.commands.export",
    "mlray.commands.serving",
    "mlray.commands.shadow",
    "mlray.commands.monitor",
    "mlray.commands.replay",
    "mlray.commands.cluster",
)
