"""Resampler quality presets; kept apart from the resampler so naming one costs no numpy import."""

from __future__ import annotations

from typing import Final, Literal

__all__ = ["DEFAULT_QUALITY", "ResampleQuality"]

ResampleQuality = Literal["QQ", "LQ", "MQ", "HQ", "VHQ"]
"""soxr quality presets, from quick cubic (``QQ``) to very high (``VHQ``)."""

DEFAULT_QUALITY: Final[ResampleQuality] = "LQ"
"""The default quality: anti-aliased with at most ~40 ms held back at 8 kHz <-> 24 kHz."""
