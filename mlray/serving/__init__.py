"""Online inference on Ray Serve: features, champion and shadow, and the prediction log.

``build_app`` (in :mod:`mlray.serving.app`) is the application builder; the
request path (:mod:`mlray.serving.service`) imports no torch.
"""

from mlray.serving.config import ServeArgs

__all__ = ["ServeArgs"]
