"""voicewire: a typed plugin framework for realtime voice-model transports."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
