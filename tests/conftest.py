"""Shared test set-up: tests are marked by folder; GPU tests skip without a GPU."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault(
    "RAY_DATA_PARQUET_FOOTER_NUM_ACTORS", "2"
)  # as mlray.ray_session does for small clusters


def _has_gpu() -> bool:
    """A CUDA device PyTorch can use (no torch, or a broken CUDA stack, means no GPU)."""
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001 - any failure to ask means no usable GPU
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu = _has_gpu()
    for item in items:
        path = Path(str(item.fspath))
        if "integration" in path.parts:
            item.add_marker(pytest.mark.integration)
        elif "unit" in path.parts:
            item.add_marker(pytest.mark.unit)
        if "gpu" in item.keywords and not gpu:
            item.add_marker(
                pytest.mark.skip(
                    reason="needs an NVIDIA GPU with CUDA (torch.cuda.is_available() is False)"
                )
            )
