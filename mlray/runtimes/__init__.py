"""Model runtimes behind one interface: serving asks for a model, not an engine.

``load_runtime(artifact, runtime="auto")`` returns a :class:`ModelRuntime`
backed by TensorRT on a GPU with ``tensorrt`` installed, else ONNX Runtime
(INT8 on CPU when the model's INT8 export passed its accuracy gate). The
engines' own packages are imported only by the implementation modules.

The scoring path never imports torch: the model's spec
(:mod:`mlray.runtimes.model_spec`), the request encoding
(:mod:`mlray.runtimes.encoding`), the GPU check (:mod:`mlray.runtimes.gpu`)
and the ONNX Runtime runtime are torch-free; only the PyTorch runtime and the
TensorRT engine (:mod:`mlray.runtimes.tensorrt_engine`, whose device buffers
are torch tensors) import it, when they are chosen.
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
