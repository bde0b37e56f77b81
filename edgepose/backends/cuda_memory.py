"""Device buffers and a stream for the TensorRT backend, through pycuda.

Kept behind this small interface (alloc / to_device / to_host / sync / free) so cuda-python could replace pycuda.
"""
from __future__ import annotations

import numpy as np

from ..errors import BackendUnavailableError


class PycudaMemory:
    """One CUDA context on `device`, one stream, and page-locked host mirrors of each device buffer."""

    def __init__(self, device: int = 0):
        try:
            import pycuda.driver as cuda
        except ImportError as exc:
            raise BackendUnavailableError(f"the TensorRT backend needs pycuda ({exc}); install it with: "
                                          "pip install 'edgepose[tensorrt]' (on the Jetson / GPU machine)") from None
        try:
            cuda.init()
            if cuda.Device.count() <= device:
                raise BackendUnavailableError(f"no CUDA device {device}: {cuda.Device.count()} GPU(s) visible")
            self.context = cuda.Device(device).retain_primary_context()
        except cuda.Error as exc:
            raise BackendUnavailableError(f"CUDA is not usable here ({exc}); TensorRT needs an NVIDIA GPU and driver") from None
        self.context.push()
        self.cuda = cuda
        self.stream = cuda.Stream()
        self._buffers: dict[str, tuple] = {}

    def buffer(self, name: str, shape: tuple, dtype: np.dtype) -> int:
        """Device pointer of a buffer for tensor `name`, (re)allocated when the shape or dtype changes."""
        held = self._buffers.get(name)
        if held is None or held[0].shape != tuple(shape) or held[0].dtype != dtype:
            host = self.cuda.pagelocked_empty(tuple(shape), dtype)
            self._buffers[name] = (host, self.cuda.mem_alloc(max(host.nbytes, 1)))
        return int(self._buffers[name][1])

    def to_device(self, name: str, array: np.ndarray) -> None:
        host, dev = self._buffers[name]
        np.copyto(host, array)
        self.cuda.memcpy_htod_async(dev, host, self.stream)

    def to_host(self, name: str) -> np.ndarray:
        host, dev = self._buffers[name]
        self.cuda.memcpy_dtoh_async(host, dev, self.stream)
        return host

    @property
    def stream_handle(self) -> int:
        return self.stream.handle

    def sync(self) -> None:
        self.stream.synchronize()

    def free(self) -> None:
        for _, dev in self._buffers.values():
            dev.free()
        self._buffers.clear()
        self.context.pop()
