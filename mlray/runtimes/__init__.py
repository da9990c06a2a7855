"""Model runtimes behind one interface: serving asks for a model, not an engine.

``load_runtime(artifact, runtime="auto")`` returns a :class:`ModelRuntime`
backed by TensorRT on a GPU with ``tensorrt`` installed, else ONNX Runtime
(INT8 on CPU when the model's INT8 export passed its accuracy gate). The
engines' own packages are imported only by the implementation modules.
"""

from mlray.runtimes.artifact import ModelArtifact, as_artifact
from mlray.runtimes.factory import RUNTIMES, load_runtime, resolve
from mlray.runtimes.protocol import ModelRuntime, check_batch

__all__ = [
    "RUNTIMES",
    "ModelArtifact",
    "ModelRuntime",
    "as_artifact",
    "check_batch",
    "load_runtime",
    "resolve",
]
