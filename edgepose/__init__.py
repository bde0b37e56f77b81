"""edgepose: head-pose estimation from training recipe to measured edge deployment.

The device half (this import) needs numpy, OpenCV and one inference engine; never torch.
"""
from __future__ import annotations

from .errors import (BackendUnavailableError, ConfigError, EdgePoseError, InputError, ModelFormatError,
                     PlatformError)
from .pose import FacePose

__version__ = "0.1.0"

__all__ = ["Runtime", "FacePose", "EdgePoseError", "ConfigError", "PlatformError", "BackendUnavailableError",
           "ModelFormatError", "InputError", "__version__"]


def __getattr__(name: str):
    if name == "Runtime":  # lazy: keeps `import edgepose` free of cv2 / engine imports
        from .runtime import Runtime

        return Runtime
    raise AttributeError(f"module 'edgepose' has no attribute '{name}'")
