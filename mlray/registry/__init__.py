"""The model registry (MLflow).

Versions with lineage, the champion/challenger aliases, loading for scoring.
"""

from mlray.registry.champion import CHALLENGER, CHAMPION, Decision, decide

__all__ = ["CHALLENGER", "CHAMPION", "Decision", "decide"]
