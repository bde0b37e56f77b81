"""One instance per calling thread of an object that is not thread-safe (LiteRT interpreters, OpenCV detectors)."""
from __future__ import annotations

import threading
import weakref
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class PerThread(Generic[T]):
    """`get()` returns the calling thread's own instance, built by `factory()` on that thread's first call.

    An instance lives as long as its thread (threading.local drops it when the thread ends), so a pool that churns
    threads does not pile up engines. `instances()` lists those still alive, e.g. to close them.

    Args:
        factory: builds one instance; called once per thread, outside any lock (loading a model can be slow).
        first: an instance already built on the calling thread (e.g. to report load errors at construction).
    """

    def __init__(self, factory: Callable[[], T], first: T | None = None):
        self._factory = factory
        self._local = threading.local()
        self._lock = threading.Lock()
        self._alive: weakref.WeakSet = weakref.WeakSet()
        if first is not None:
            self._remember(first)

    def _remember(self, value: T) -> None:
        self._local.value = value
        with self._lock:
            self._alive.add(value)

    def get(self) -> T:
        value = getattr(self._local, "value", None)
        if value is None:
            value = self._factory()
            self._remember(value)
        return value

    def instances(self) -> list[T]:
        with self._lock:
            return list(self._alive)


class Shared(Generic[T]):
    """The PerThread interface over one instance that is safe to share (an ONNX Runtime session)."""

    def __init__(self, value: T):
        self.value = value

    def get(self) -> T:
        return self.value

    def instances(self) -> list[T]:
        return [self.value]
