"""voicewire-acme: an example third-party telephony plugin for the invented provider Acme Voice.

* :mod:`voicewire_acme.protocol`: Acme's JSON dialect, sans-I/O (:class:`AcmeCall`).
* :mod:`voicewire_acme.edge`: :class:`AcmeEdge`, the dialect as a ``TelephonyEdge``.
* :mod:`voicewire_acme.app`: the aiohttp route that bridges each call to a model.
* :mod:`voicewire_acme.plugin`: registers the ``acme`` edge (entry point ``acme``).
* :mod:`voicewire_acme.caller`: :class:`AcmeDialect`, Acme's side for the simulated caller.
"""

from __future__ import annotations

from voicewire_acme.edge import AcmeEdge
from voicewire_acme.protocol import AcmeCall

__all__ = ["AcmeCall", "AcmeEdge", "__version__"]

__version__ = "0.1.0"
