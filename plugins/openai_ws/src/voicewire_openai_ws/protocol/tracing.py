"""The one tracing update sent after ``session.created``.

Tracing is kept out of the normal ``session.update``: once the server has a tracing
configuration, it cannot be replaced, so sending it with every update would fail. Instead the
desired value is applied once, after the server reported its current one, by these rules (``C`` =
the server's value, absent counting as ``null``; ``T`` = the desired value):

1. ``T == "auto"``: send ``tracing: "auto"``.
2. ``C`` is an object and ``T`` is an object or ``null``: send nothing; warn that tracing is
   already set.
3. ``T is null``: send ``tracing: null`` (tracing cannot be switched on again later).
4. ``C`` is ``null`` or a string: send ``tracing: T``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from voicewire.config import Disabled, TracingConfig

__all__ = ["TracingDecision", "TracingValue", "decide_tracing_update", "desired_tracing"]

TracingValue = Literal["auto"] | dict[str, Any] | None
"""A wire tracing value: ``"auto"``, a configuration object, or ``None`` (JSON ``null``: off)."""


def desired_tracing(value: Literal["auto"] | TracingConfig | Disabled | None) -> TracingValue:
    """The wire value a config's ``tracing`` asks for: unset means ``"auto"``, ``DISABLED`` null.

    A ``TracingConfig`` becomes ``{workflow_name, group_id, metadata}`` without unset keys.
    """
    if value is None or value == "auto":
        return "auto"
    if isinstance(value, Disabled):
        return None
    wire: dict[str, Any] = {}
    if value.workflow_name is not None:
        wire["workflow_name"] = value.workflow_name
    if value.group_id is not None:
        wire["group_id"] = value.group_id
    if value.metadata is not None:
        wire["metadata"] = dict(value.metadata)
    return wire


@attrs.frozen(kw_only=True)
class TracingDecision:
    """What to do about tracing after ``session.created``.

    Attributes:
        event: The ``session.update`` to send, or ``None`` to send nothing.
        warning: Why nothing was sent when the desired value could not be applied.
    """

    event: Mapping[str, Any] | None = None
    warning: str | None = None


def _update(value: TracingValue) -> dict[str, Any]:
    return {"type": "session.update", "session": {"type": "realtime", "tracing": value}}


def decide_tracing_update(desired: TracingValue, current: object) -> TracingDecision:
    """Apply the module's four rules.

    Args:
        desired: What the application wants (see :func:`desired_tracing`).
        current: The server's ``session.tracing`` from ``session.created``.

    Returns:
        The decision; a pure value, nothing is sent here.
    """
    if desired == "auto":
        return TracingDecision(event=_update("auto"))
    if isinstance(current, Mapping):
        return TracingDecision(
            warning="tracing is already configured on this session and cannot be changed; "
            "the requested tracing configuration was not applied"
        )
    if desired is None:
        return TracingDecision(event=_update(None))
    if current is None or isinstance(current, str):
        return TracingDecision(event=_update(desired))
    # Not a rule of its own: a value no server sends (a number, a list) is left alone.
    return TracingDecision(
        warning=f"unexpected server tracing value {current!r}; tracing left unchanged"
    )
