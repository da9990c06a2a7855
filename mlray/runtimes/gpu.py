"""Is there a CUDA GPU here? Answered from the driver library, without importing torch.

``torch.cuda.is_available()`` would answer too, but importing torch costs
about a second and a few hundred MB in a serving replica that may never use
it. The CUDA driver API answers the same question: ``cuInit`` then
``cuDeviceGetCount`` on ``libcuda`` (which honours ``CUDA_VISIBLE_DEVICES``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

log = logging.getLogger(__name__)

_LIBCUDA_NAMES = ("libcuda.so.1", "libcuda.so")


@functools.cache
def cuda_device_count() -> int:
    """How many CUDA GPUs this process can see; 0 without a driver or a device.

    Cached: the answer does not change within a process.
    """
    lib = _load_libcuda()
    if lib is None:
        return 0
    count = ctypes.c_int(0)
    try:
        # CUDA_SUCCESS is 0; no device or a driver/GPU mismatch returns an error code.
        if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
    except (AttributeError, OSError) as e:
        log.debug("libcuda unusable (%s): no GPU assumed", e)
        return 0
    return int(count.value)


def gpu_available() -> bool:
    """True when at least one CUDA GPU is visible."""
    return cuda_device_count() > 0


def _load_libcuda() -> ctypes.CDLL | None:
    found = ctypes.util.find_library("cuda")
    for name in (*_LIBCUDA_NAMES, *([found] if found else [])):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None
