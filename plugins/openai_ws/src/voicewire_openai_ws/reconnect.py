"""``ReconnectPolicy``: when and how often the WebSocket transport reconnects after a drop.

The policy is a plain value: the transport asks it for the delays before each attempt
(:meth:`ReconnectPolicy.delays`) and whether a failure is worth retrying at all
(:meth:`ReconnectPolicy.is_fatal`). It holds no clock and no socket.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from typing import Final

import attrs

from voicewire.errors import ConfigError

__all__ = [
    "DEFAULT_FATAL_CODES",
    "DEFAULT_FATAL_HTTP_STATUSES",
    "ReconnectPolicy",
]

DEFAULT_FATAL_CODES: Final[frozenset[str]] = frozenset(
    {
        "invalid_api_key",
        "insufficient_quota",
        "model_not_found",
        "missing_api_key",
        "invalid_url",
    }
)
"""Error codes that no retry can fix: a bad or missing key, no quota, a model or URL that does not
exist. ``missing_api_key`` and ``invalid_url`` are voicewire's own codes; the others are
OpenAI's (from an HTTP error body or an ``error`` event)."""

DEFAULT_FATAL_HTTP_STATUSES: Final[frozenset[int]] = frozenset({400, 401, 403, 404})
"""HTTP statuses of a refused upgrade that no retry can fix. 408, 429 and 5xx are retried."""


def _positive_int(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"ReconnectPolicy.{attr.name}", f"must be an int >= 1, got {value!r}")


def _non_negative(_inst: object, attr: attrs.Attribute[float], value: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ConfigError(
            f"ReconnectPolicy.{attr.name}", f"must be a finite number >= 0, got {value!r}"
        )


def _at_least_one(_inst: object, attr: attrs.Attribute[float], value: float) -> None:
    _non_negative(_inst, attr, value)
    if value < 1:
        raise ConfigError(f"ReconnectPolicy.{attr.name}", f"must be >= 1, got {value!r}")


def _fraction(_inst: object, attr: attrs.Attribute[float], value: float) -> None:
    _non_negative(_inst, attr, value)
    if value > 1:
        raise ConfigError(f"ReconnectPolicy.{attr.name}", f"must be within 0..1, got {value!r}")


def _codes(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        raise ConfigError("ReconnectPolicy.fatal_codes", "must be a collection of codes, not a str")
    return frozenset(value)


def _statuses(value: Iterable[int]) -> frozenset[int]:
    return frozenset(value)


@attrs.frozen(kw_only=True)
class ReconnectPolicy:
    """How the transport reconnects after the connection drops unexpectedly.

    After a drop (anything but the application's own ``close()``), the transport waits
    ``delays()[n - 1]`` seconds before attempt ``n``, for at most ``max_attempts`` attempts. The
    wait before the first attempt is ``initial_delay``; each further one is ``multiplier`` times
    the previous, capped at ``max_delay``. ``jitter`` then shortens each wait by a random fraction
    of up to ``jitter`` of it (0: exact waits; 1: anywhere between 0 and the full wait), so many
    clients dropped at once do not all come back at the same instant.

    A failure whose OpenAI error code is in ``fatal_codes``, or whose refused upgrade has an HTTP
    status in ``fatal_http_statuses``, stops retrying at once: a bad key stays bad.

    Attributes:
        max_attempts: Attempts after one drop before giving up (>= 1).
        initial_delay: Seconds before the first attempt.
        max_delay: Cap of a single wait, in seconds.
        multiplier: Growth of the wait from one attempt to the next (>= 1).
        jitter: Fraction (0..1) of each wait that may be randomly cut off.
        seed: Seeds the jitter, for reproducible waits in tests; ``None`` draws fresh ones.
        restore_state: Replay the session configuration and the confirmed conversation on the
            new connection. Off, the new session starts empty, with the configuration only.
        fatal_codes: Error codes that stop retrying.
        fatal_http_statuses: HTTP statuses of a refused upgrade that stop retrying.
    """

    max_attempts: int = attrs.field(default=6, validator=_positive_int)
    initial_delay: float = attrs.field(default=0.25, validator=_non_negative)
    max_delay: float = attrs.field(default=8.0, validator=_non_negative)
    multiplier: float = attrs.field(default=2.0, validator=_at_least_one)
    jitter: float = attrs.field(default=0.2, validator=_fraction)
    seed: int | None = None
    restore_state: bool = True
    fatal_codes: frozenset[str] = attrs.field(default=DEFAULT_FATAL_CODES, converter=_codes)
    fatal_http_statuses: frozenset[int] = attrs.field(
        default=DEFAULT_FATAL_HTTP_STATUSES, converter=_statuses
    )

    def delays(self, rng: random.Random | None = None) -> list[float]:
        """The wait before each attempt, in seconds: ``max_attempts`` values.

        Args:
            rng: The random source of the jitter; by default one seeded with :attr:`seed`.

        Returns:
            The waits, first attempt first.
        """
        source = rng if rng is not None else random.Random(self.seed)
        waits: list[float] = []
        base = self.initial_delay
        for _ in range(self.max_attempts):
            wait = min(base, self.max_delay)
            if self.jitter:
                wait *= 1.0 - self.jitter * source.random()
            waits.append(wait)
            base *= self.multiplier
        return waits

    def is_fatal(self, *, code: str | None = None, http_status: int | None = None) -> bool:
        """Whether a failure with this error code or HTTP status is not worth retrying.

        Args:
            code: The OpenAI (or voicewire) error code, if known.
            http_status: The HTTP status of a refused upgrade, if any.

        Returns:
            ``True`` to stop retrying.
        """
        if code is not None and code in self.fatal_codes:
            return True
        return http_status is not None and http_status in self.fatal_http_statuses
