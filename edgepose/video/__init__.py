"""Video: the threaded capture -> detect -> pose stream (`Runtime.stream`), face tracks and One-Euro smoothing."""
from .stream import FrameResult, PoseStream, StreamOptions

__all__ = ["FrameResult", "PoseStream", "StreamOptions"]
