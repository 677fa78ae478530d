"""voicewire plugin ``acme``: the hook implementation of voicewire-acme.

This module is the value of the distribution's ``voicewire.plugins`` entry point. It registers
the ``acme`` telephony edge, so ``voicewire.create_edge("acme", websocket=ws)`` builds an
:class:`~voicewire_acme.edge.AcmeEdge` on an accepted WebSocket.
"""

from __future__ import annotations

from typing import Any

from voicewire.hookspecs import hookimpl
from voicewire.registry import Registry
from voicewire_acme.edge import AcmeEdge

__all__ = ["create_acme_edge", "voicewire_register_transports"]


def create_acme_edge(**options: Any) -> AcmeEdge:
    """Build the edge from the keyword options of :class:`AcmeEdge` (``websocket=...``)."""
    return AcmeEdge(**options)


@hookimpl
def voicewire_register_transports(registry: Registry) -> None:
    """Register the ``acme`` telephony edge."""
    registry.add_telephony_edge(
        "acme",
        create_acme_edge,
        description="Acme Voice media streams (JSON over WebSocket, G.711 8 kHz, marks)",
    )
