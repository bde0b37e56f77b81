"""The exception tree of edgepose: every message says what was wrong, what is valid, and how to fix it."""
from __future__ import annotations

import difflib


class EdgePoseError(Exception):
    """Base class of every error edgepose raises on purpose."""


class ConfigError(EdgePoseError, ValueError):
    """A recipe, platform file or manifest has a bad key or value."""


class PlatformError(EdgePoseError, ValueError):
    """An unknown platform name or an unusable platform file."""


class BackendUnavailableError(EdgePoseError, ImportError):
    """The inference engine a platform needs is not installed or cannot run on this machine."""


class ModelFormatError(EdgePoseError, ValueError):
    """A model file or bundle is missing, corrupt, or does not match its manifest."""


class InputError(EdgePoseError, ValueError):
    """A frame, box or batch handed to the runtime is malformed."""


def did_you_mean(word: str, choices) -> str:
    """' Did you mean 'x'?' for the closest of `choices`, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""
