"""voicewire plugin ``telnyx``: the hook implementation of voicewire-telnyx.

Registers the ``telnyx`` telephony edge. The registered factory also carries what the core
command line looks up: ``voicewire_serve`` (``voicewire serve --telephony telnyx``) and
``voicewire_caller_dialect`` (``voicewire call --telephony telnyx``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from voicewire.hookspecs import hookimpl
from voicewire.registry import Registry
from voicewire_telnyx.edge import TelnyxEdge

if TYPE_CHECKING:
    from voicewire.cli.serve import ServeSettings
    from voicewire_telnyx.caller import TelnyxDialect

__all__ = ["TelnyxEdgeFactory", "voicewire_register_transports"]


async def _serve(settings: ServeSettings, ready: Callable[[str], None]) -> None:
    from voicewire_telnyx.app import serve  # on use: `voicewire plugins` skips the server

    await serve(settings, ready)


def _caller_dialect(**options: Any) -> TelnyxDialect:
    from voicewire_telnyx.caller import TelnyxDialect

    return TelnyxDialect(**options)


class TelnyxEdgeFactory:
    """Builds a :class:`TelnyxEdge` (``websocket=`` and its keyword options)."""

    voicewire_serve = staticmethod(_serve)
    voicewire_caller_dialect = staticmethod(_caller_dialect)

    def __call__(self, *, websocket: Any, **options: Any) -> TelnyxEdge:
        """Build an edge over ``websocket``."""
        return TelnyxEdge(websocket, **options)

    def __repr__(self) -> str:
        return "TelnyxEdgeFactory()"


@hookimpl
def voicewire_register_transports(registry: Registry) -> None:
    """Register the ``telnyx`` telephony edge."""
    registry.add_telephony_edge(
        "telnyx",
        TelnyxEdgeFactory(),
        description="Telnyx media streaming (bidirectional RTP: PCMU/PCMA 8 kHz, L16), marks",
    )
