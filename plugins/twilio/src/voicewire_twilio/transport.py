"""``TwilioRealtimeTransportLayer``: a Twilio call joined to a realtime model, in one object.

The class keeps the reference implementation's name for familiarity, but it is not a subclass of
a model transport: it is a :class:`voicewire.bridge.CallBridge` of a :class:`TwilioEdge` and a
model transport (``openai_ws`` by default), and like every bridge it is itself a
``RealtimeTransportLayer``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from voicewire.audio.formats import AudioFormat
from voicewire.bridge.call import CallBridge
from voicewire.bridge.model import BridgeableModel
from voicewire.errors import AudioFormatError, ConfigError
from voicewire.registry import create_transport
from voicewire_twilio.edge import TwilioEdge

__all__ = ["TwilioRealtimeTransportLayer"]


def model_format(value: object) -> AudioFormat | None:
    """Read a ``model_audio_format`` option: ``None``, an ``AudioFormat`` or a format name."""
    if value is None or isinstance(value, AudioFormat):
        return value
    if isinstance(value, str):
        try:
            return AudioFormat.parse(value)
        except AudioFormatError as exc:
            raise ConfigError("model_audio_format", str(exc)) from None
    raise ConfigError(
        "model_audio_format", f"must be an AudioFormat, a format name or None, got {value!r}"
    )


class TwilioRealtimeTransportLayer(CallBridge):
    """A Twilio Media Stream bridged to a realtime model: ``CallBridge(TwilioEdge(ws), model)``.

    In your own WebSocket handler, after accepting Twilio's connection::

        bridge = TwilioRealtimeTransportLayer(twilio_websocket=ws)
        await bridge.run(ConnectOptions(api_key=key, initial_session_config=config))

    Audio formats: by default the model session is forced to mu-law 8 kHz both ways, whatever
    the session configuration says, so Twilio's bytes pass through untouched (no resampling, no
    re-encoding). Only an explicit ``model_audio_format`` (e.g. ``"audio/pcm"``) switches to
    transcoding.

    Args:
        twilio_websocket: The accepted Twilio WebSocket: an aiohttp ``WebSocketResponse`` or any
            :class:`~voicewire_twilio.websocket.MediaSocket` adapter.
        model_transport: A registry name of a model transport (``"openai_ws"``), built with
            ``voicewire.create_transport(name, **model_options)``, or a model transport object.
        model_options: Keyword options for the model transport's factory (only with a name).
        model_audio_format: ``None`` for pass-through mu-law, else the model session's format
            (an ``AudioFormat`` or a name such as ``"audio/pcm"``): transcoding both ways.
        edge_options: Keyword options of :class:`TwilioEdge` (``outbound_buffer_ms``, ...).
        **bridge_options: Keyword options of :class:`~voicewire.bridge.CallBridge`
            (``inactivity_timeout_ms``, ``heard_margin_ms``, ``observers``, ...).

    Raises:
        ConfigError: An option is invalid (``model_options`` with a model object, an unknown
            format name, ...).
        UnknownTransportError: No model transport is registered under ``model_transport``.
        TypeError: The websocket or the model is not usable.
    """

    def __init__(
        self,
        *,
        twilio_websocket: object,
        model_transport: str | BridgeableModel = "openai_ws",
        model_options: Mapping[str, Any] | None = None,
        model_audio_format: AudioFormat | str | None = None,
        edge_options: Mapping[str, Any] | None = None,
        **bridge_options: Any,
    ) -> None:
        fmt = model_format(model_audio_format)
        edge = TwilioEdge(twilio_websocket, **dict(edge_options or {}))
        if isinstance(model_transport, str):
            model: Any = create_transport(model_transport, **dict(model_options or {}))
        else:
            if model_options:
                raise ConfigError(
                    "model_options", "only applies when model_transport is a registry name"
                )
            model = model_transport
        super().__init__(edge, model, model_audio_format=fmt, **bridge_options)
        self._twilio_edge = edge

    @property
    def twilio_edge(self) -> TwilioEdge:
        """The Twilio edge of this call (stream ids, counters)."""
        return self._twilio_edge
