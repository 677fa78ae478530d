"""Plugins that voicewire's test suite discovers through the ``voicewire.plugins`` entry points.

- ``vw_test_good`` (:mod:`voicewire_testplugins.good`): implements every voicewire hook.
- ``vw_test_broken`` (:mod:`voicewire_testplugins.broken`): raises on import.
- ``vw_test_blocked`` (:mod:`voicewire_testplugins.blocked`): works, and is blocked by the tests.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
