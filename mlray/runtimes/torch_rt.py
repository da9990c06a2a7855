"""PyTorch: the trained module itself, or its ``torch.export`` program, in FP32 on CPU or CUDA.

The reference every other runtime is checked against, and the fallback for a
model that cannot be exported.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlray.errors import ConfigError
from mlray.runtimes.artifact import ModelArtifact
from mlray.runtimes.protocol import check_batch


class TorchRuntime:
    """A model run by PyTorch in eval mode under ``inference_mode``.

    Args:
        device: ``"cpu"`` or ``"cuda"`` (any other string is a ConfigError).
        threads: if set, ``torch.set_num_threads`` (process-wide) before serving.
    """

    def __init__(self, device: str = "cpu", threads: int | None = None) -> None:
        if device not in ("cpu", "cuda"):
            raise ConfigError(f"Unknown PyTorch device {device!r}; use 'cpu' or 'cuda'.")
        self.device = device
        self.threads = threads
        self.name = f"torch-{device}-fp32"
        self.feature_names: list[str] = []
        self._module: Any = None
        self._device: Any = None

    def load(self, artifact: ModelArtifact) -> None:
        """Use ``artifact.torch_module`` if given, else load ``model.pt2``.

        Raises:
            NotFoundError: neither a module nor a program file.
            ConfigError: ``device='cuda'`` without a CUDA GPU.
        """
        import torch

        if self.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device='cuda' but PyTorch sees no CUDA GPU; use device='cpu'.")
        if self.threads:
            torch.set_num_threads(self.threads)
        # An explicit index: the program's device asserts compare 'cuda:0', not 'cuda'.
        self._device = (
            torch.device("cuda", torch.cuda.current_device())
            if self.device == "cuda"
            else torch.device("cpu")
        )
        if artifact.torch_module is not None:
            module = artifact.torch_module
            module.eval()
            self._module = module.to(self._device)
        else:
            program = torch.export.load(str(artifact.require("torch")))
            # An exported program asserts the device it was traced on:
            # move it with the pass, not Module.to.
            if self.device != "cpu":
                from torch.export.passes import move_to_device_pass

                program = move_to_device_pass(program, str(self._device))
            self._module = program.module()
        self.feature_names = list(artifact.feature_names)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Click probabilities, float32 ``[batch]``.

        Raises:
            SchemaError: wrong shape or dtype.
        """
        import torch

        if self._module is None:
            raise ConfigError(f"{self.name}: call load(artifact) before predict().")
        x = check_batch(batch, self.feature_names)
        if len(x) == 0:
            return np.empty(0, np.float32)
        with torch.inference_mode():
            out = self._module(torch.from_numpy(x).to(self._device))
        return out.float().cpu().numpy()
