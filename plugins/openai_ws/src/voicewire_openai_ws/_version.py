"""The distribution version, in one place (the package and the User-Agent header read it)."""

from __future__ import annotations

__version__ = "0.1.0"
