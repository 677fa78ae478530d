"""The transport protocol: what every realtime model transport (and the call bridge) offers.

``TransportBase`` (further down) owns the status transitions, the event emitter and the observer
fan-out, so that a concrete transport only does protocol work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import attrs

if TYPE_CHECKING:
    from voicewire.config import SessionConfig
    from voicewire.emitter import Listener
    from voicewire.events import FunctionCallEvent, TransportEvent
    from voicewire.items import RealtimeItem, UserMessageItem

__all__ = [
    "ApiKey",
    "ConnectOptions",
    "RealtimeTransportLayer",
    "TransportStatus",
]

TransportStatus = Literal["connecting", "connected", "disconnecting", "disconnected"]
"""Life-cycle status of a transport."""

ApiKey = str | Callable[[], Awaitable[str]]
"""A credential, or a zero-argument coroutine function that returns one at connect time."""


def _redact(value: object) -> str:
    # A key must never reach a log line through a repr.
    return "None" if value is None else "'***'"


@attrs.frozen(kw_only=True)
class ConnectOptions:
    """What ``connect()`` needs. Every field is optional; transports fall back to their own defaults.

    ``api_key`` is a string or a zero-argument async callable (awaited at connect time, so short-lived
    keys can be fetched fresh); it never appears in ``repr``.
    """

    api_key: ApiKey | None = attrs.field(default=None, repr=_redact)
    model: str | None = None
    url: str | None = None
    initial_session_config: SessionConfig | None = None
    extra_headers: Mapping[str, str] = attrs.field(factory=dict, repr=lambda h: f"<{len(h)} headers>")


@runtime_checkable
class RealtimeTransportLayer(Protocol):
    """A connection to a realtime voice model, or anything that behaves like one.

    I/O methods are coroutines. Events are consumed with ``on``/``off``/``once`` or with
    ``events()``; see :mod:`voicewire.events` for the event types and their channels.
    """

    @property
    def status(self) -> TransportStatus:
        """``connecting``, ``connected``, ``disconnecting`` or ``disconnected``."""
        ...

    @property
    def muted(self) -> bool | None:
        """Whether input is muted; ``None`` when muting is not the transport's job."""
        ...

    async def connect(self, options: ConnectOptions) -> None:
        """Open the connection and apply ``options.initial_session_config``."""
        ...

    async def close(self) -> None:
        """Close the connection. Idempotent."""
        ...

    async def send_audio(self, audio: bytes, *, commit: bool = False) -> None:
        """Append input audio; ``commit=True`` also closes the input turn."""
        ...

    async def send_event(self, event: Mapping[str, Any]) -> None:
        """Send a raw client event (a mapping with a string ``type``)."""
        ...

    async def send_message(
        self,
        message: str | UserMessageItem,
        other_event_data: Mapping[str, Any] | None = None,
    ) -> None:
        """Add a user message to the conversation and ask for a response."""
        ...

    async def send_function_call_output(
        self, tool_call: FunctionCallEvent, output: str, start_response: bool = True
    ) -> None:
        """Return a tool result; optionally ask for a follow-up response."""
        ...

    async def interrupt(self) -> None:
        """Stop the current model turn and truncate it at what was heard."""
        ...

    def mute(self, muted: bool) -> None:
        """Mute or unmute input; WebSocket-family transports raise ``MuteNotSupportedError``."""
        ...

    async def reset_history(
        self, old: Sequence[RealtimeItem], new: Sequence[RealtimeItem]
    ) -> None:
        """Make the server-side conversation match ``new``."""
        ...

    async def update_session_config(self, config: SessionConfig) -> None:
        """Push a new (partial) session configuration."""
        ...

    def on(self, channel: str, listener: Listener) -> None:
        """Call ``listener`` for every event on ``channel`` (``"*"``: raw wire messages)."""
        ...

    def off(self, channel: str, listener: Listener) -> None:
        """Stop calling ``listener`` for ``channel``."""
        ...

    def once(self, channel: str, listener: Listener) -> None:
        """Call ``listener`` for the next event on ``channel`` only."""
        ...

    def emit(self, channel: str, event: Any) -> None:
        """Deliver ``event`` to the listeners of ``channel``."""
        ...

    def events(self, *channels: str) -> AsyncIterator[TransportEvent]:
        """Iterate over events (of the given channels, or all typed events) through a bounded queue."""
        ...
