"""The transport's pure parts: ReconnectPolicy and the buffer of audio held while connecting."""

from __future__ import annotations

import random
from typing import Any

import attrs
import pytest

from voicewire.errors import ConfigError
from voicewire_openai_ws import ReconnectPolicy
from voicewire_openai_ws.pending_audio import PendingAudio

# --- ReconnectPolicy ---------------------------------------------------------------------------


def test_delays_grow_geometrically_up_to_the_cap_without_jitter() -> None:
    policy = ReconnectPolicy(max_attempts=6, initial_delay=0.5, multiplier=2, max_delay=4, jitter=0)
    assert policy.delays() == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_jitter_only_shortens_waits_and_is_reproducible_with_a_seed() -> None:
    policy = ReconnectPolicy(
        max_attempts=20, initial_delay=1, multiplier=1.5, max_delay=10, jitter=0.5, seed=7
    )
    plain = attrs.evolve(policy, jitter=0).delays()
    waits = policy.delays()
    assert waits == policy.delays()  # same seed, same waits
    assert waits == policy.delays(random.Random(7))
    assert waits != attrs.evolve(policy, seed=8).delays()
    for wait, full in zip(waits, plain, strict=True):
        assert full * 0.5 <= wait <= full
    full_jitter = attrs.evolve(policy, jitter=1.0).delays()
    assert all(0 <= w <= f for w, f in zip(full_jitter, plain, strict=True))


def test_defaults_are_bounded_and_documented() -> None:
    policy = ReconnectPolicy()
    assert policy.max_attempts == 6
    assert sum(attrs.evolve(policy, jitter=0).delays()) <= 20  # about 16 s before giving up
    assert policy.restore_state


@pytest.mark.parametrize(
    ("code", "status", "fatal"),
    [
        ("invalid_api_key", None, True),
        ("insufficient_quota", None, True),
        ("model_not_found", None, True),
        ("session_expired", None, False),  # a 60-minute cap: reconnecting is the cure
        ("http_error", 401, True),
        ("http_error", 403, True),
        ("http_error", 429, False),
        ("http_error", 503, False),
        (None, None, False),
    ],
)
def test_fatal_codes_and_statuses(code: str | None, status: int | None, fatal: bool) -> None:
    assert ReconnectPolicy().is_fatal(code=code, http_status=status) is fatal


def test_fatal_sets_can_be_replaced() -> None:
    policy = ReconnectPolicy(fatal_codes=["custom"], fatal_http_statuses=[500])
    assert policy.is_fatal(code="custom")
    assert not policy.is_fatal(code="invalid_api_key")
    assert policy.is_fatal(http_status=500)
    assert isinstance(policy.fatal_codes, frozenset)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_attempts": 1.5},
        {"initial_delay": -1},
        {"max_delay": float("inf")},
        {"multiplier": 0.5},
        {"jitter": 1.5},
        {"jitter": True},
        {"fatal_codes": "invalid_api_key"},
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        ReconnectPolicy(**kwargs)


def test_policy_is_a_frozen_value() -> None:
    policy = ReconnectPolicy()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.max_attempts = 3  # type: ignore[misc]
    assert policy == ReconnectPolicy()


# --- PendingAudio ------------------------------------------------------------------------------


def test_pending_audio_keeps_order_and_joins_runs_at_commits() -> None:
    pending = PendingAudio(100)
    pending.add(b"aa")
    pending.add(b"bb", commit=True)
    pending.add(b"", commit=True)
    pending.add(b"cc")
    assert pending.size == 6
    assert len(pending) == 4
    assert pending.take() == [(b"aabb", True), (b"", True), (b"cc", False)]
    assert not pending
    assert pending.size == 0


def test_pending_audio_drops_whole_oldest_chunks_and_counts_them() -> None:
    pending = PendingAudio(6)
    assert pending.add(b"111") == 0
    assert pending.add(b"222") == 0
    assert pending.add(b"33") == 3  # "111" goes
    assert pending.add(b"4444") == 3  # "222" goes: "33" + "4444" fit exactly
    assert pending.take() == [(b"334444", False)]
    assert pending.dropped_bytes == 6
    assert pending.dropped_chunks == 2
    pending.reset_counters()
    assert pending.dropped_bytes == 0


def test_a_chunk_bigger_than_the_limit_is_dropped_itself() -> None:
    pending = PendingAudio(4)
    pending.add(b"ok")
    assert pending.add(b"toolarge") == 8
    assert pending.take() == [(b"ok", False)]
    nothing = PendingAudio(0)
    assert nothing.add(b"x") == 1
    assert nothing.add(b"", commit=True) == 0  # an empty commit costs nothing
    assert nothing.take() == [(b"", True)]


def test_clear_reports_what_it_discarded() -> None:
    pending = PendingAudio(10)
    pending.add(b"abc")
    assert pending.clear() == 3
    assert pending.clear() == 0
