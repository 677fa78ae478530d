"""voicewire-telnyx: Telnyx's bidirectional media-streaming WebSocket as a voicewire edge.

* :mod:`voicewire_telnyx.protocol`: the dialect, sans-I/O (:class:`TelnyxStream`).
* :mod:`voicewire_telnyx.edge`: :class:`TelnyxEdge`, the dialect as a ``TelephonyEdge``.
* :mod:`voicewire_telnyx.app`: the aiohttp server (``/media-stream``, ``/healthz``) and the
  ``voicewire serve --telephony telnyx`` runner.
* :mod:`voicewire_telnyx.plugin`: registers the ``telnyx`` edge (entry point ``telnyx``).
* :mod:`voicewire_telnyx.caller`: :class:`TelnyxDialect`, Telnyx's side for the simulated caller.
"""

from __future__ import annotations

from voicewire_telnyx.edge import TelnyxEdge
from voicewire_telnyx.protocol import TelnyxStream

__all__ = ["TelnyxEdge", "TelnyxStream", "__version__"]

__version__ = "0.1.0"
