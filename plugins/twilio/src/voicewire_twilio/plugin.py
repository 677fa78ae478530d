"""voicewire plugin ``twilio``: the hook implementations of voicewire-twilio.

This module is the value of the distribution's ``voicewire.plugins`` entry point. It registers the
``twilio`` telephony edge, so that ``voicewire.create_edge("twilio", websocket=ws)`` builds a
:class:`~voicewire_twilio.edge.TwilioEdge`. The registered factory also carries what the core
command line looks up by convention: ``voicewire_serve`` (the server behind ``voicewire serve``)
``voicewire_caller_dialect`` (the dialect of ``voicewire call``) and ``voicewire_caller_webhook``
(what ``voicewire call --webhook`` does first).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from voicewire.hookspecs import hookimpl
from voicewire.registry import Registry
from voicewire_twilio.edge import TwilioEdge

if TYPE_CHECKING:
    from voicewire.cli.serve import ServeSettings
    from voicewire_twilio.caller import TwilioDialect

__all__ = ["TwilioEdgeFactory", "voicewire_register_transports"]


async def _serve(settings: ServeSettings, ready: Callable[[str], None]) -> None:
    # Imported on use: ``voicewire plugins`` should not pay for the server's imports.
    from voicewire_twilio.server import serve

    await serve(settings, ready)


def _caller_dialect(**options: Any) -> TwilioDialect:
    from voicewire_twilio.caller import TwilioDialect

    return TwilioDialect(**options)


async def _caller_webhook(webhook_url: str, **options: Any) -> tuple[str, TwilioDialect]:
    from voicewire_twilio.webhook import ring

    return await ring(webhook_url, **options)


class TwilioEdgeFactory:
    """Builds a :class:`TwilioEdge`; registered as the ``twilio`` telephony edge.

    Call it with ``websocket=`` (an aiohttp WebSocket or a
    :class:`~voicewire_twilio.websocket.MediaSocket`) and any keyword option of
    :class:`TwilioEdge`.
    """

    voicewire_serve = staticmethod(_serve)
    """``voicewire serve`` runs this (see :mod:`voicewire.cli.serve`)."""

    voicewire_caller_dialect = staticmethod(_caller_dialect)
    """``voicewire call`` builds its dialect with this (see :mod:`voicewire.cli.call`)."""

    voicewire_caller_webhook = staticmethod(_caller_webhook)
    """``voicewire call --webhook URL`` rings the bridge with this (see
    :func:`voicewire_twilio.webhook.ring`)."""

    def __call__(self, *, websocket: object, **options: Any) -> TwilioEdge:
        """Build an edge over ``websocket``."""
        return TwilioEdge(websocket, **options)

    def __repr__(self) -> str:
        return "TwilioEdgeFactory()"


@hookimpl
def voicewire_register_transports(registry: Registry) -> None:
    """Register the ``twilio`` telephony edge."""
    registry.add_telephony_edge(
        "twilio",
        TwilioEdgeFactory(),
        description="Twilio Media Streams (bidirectional), with marks and signature checks",
    )
