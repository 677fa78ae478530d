"""Plugin ``vw_test_broken``: its import fails, as a plugin with a missing dependency would."""

from __future__ import annotations

raise ImportError("vw_test_broken cannot be imported (on purpose, for the test suite)")
