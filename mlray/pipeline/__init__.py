"""The training pipeline: :func:`run_pipeline` calls the stages in order.

The stages read top to bottom in :mod:`mlray.pipeline.stages`; the run's
record (context, result, MLflow logging) is :mod:`mlray.pipeline.record`.
"""

from mlray.pipeline.record import PipelineResult
from mlray.pipeline.stages import run_pipeline

__all__ = ["PipelineResult", "run_pipeline"]
