"""voicewire-openai-ws: the OpenAI Realtime API over WebSocket."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
