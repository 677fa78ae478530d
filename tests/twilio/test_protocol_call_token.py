"""Call tokens, sans I/O: minted for a call and its parameters, good once, for a while."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicewire.errors import ConfigError
from voicewire_twilio.protocol import CALL_TOKEN_PARAMETER, CallTokens

AUTH_TOKEN = "auth-token-for-call-tokens"
CALL = "CA" + "1" * 32
OTHER_CALL = "CA" + "2" * 32
NOW = 1_800_000_000.0
PARAMETERS = {"From": "+15550001111", "tenant": "acme"}


def start_parameters(token: str, **changes: str) -> dict[str, str]:
    """What Twilio hands back in ``start.customParameters``."""
    return {**PARAMETERS, **changes, CALL_TOKEN_PARAMETER: token}


def test_a_minted_token_is_good_once() -> None:
    tokens = CallTokens(AUTH_TOKEN)
    token = tokens.mint(CALL, PARAMETERS, NOW)
    assert token.startswith("v1.1800000000.")
    assert tokens.check(CALL, start_parameters(token), NOW + 2) == "ok"
    assert tokens.check(CALL, start_parameters(token), NOW + 3) == "reused"


def test_another_process_with_the_same_auth_token_accepts_it() -> None:
    token = CallTokens(AUTH_TOKEN).mint(CALL, PARAMETERS, NOW)
    assert CallTokens(AUTH_TOKEN).check(CALL, start_parameters(token), NOW) == "ok"
    assert CallTokens("another-account").check(CALL, start_parameters(token), NOW) == "forged"


def test_the_order_of_the_parameters_does_not_matter() -> None:
    tokens = CallTokens(AUTH_TOKEN)
    token = tokens.mint(CALL, dict(reversed(list(PARAMETERS.items()))), NOW)
    assert tokens.check(CALL, start_parameters(token), NOW) == "ok"


@pytest.mark.parametrize(
    ("call_sid", "changes", "verdict"),
    [
        (OTHER_CALL, {}, "forged"),  # a token lifted from another call's start
        (CALL, {"From": "+15559999999"}, "forged"),  # a parameter changed
        (CALL, {"extra": "x"}, "forged"),  # a parameter added
        (CALL, {"From": "+15550001111", "tenant": "acme "}, "forged"),
    ],
    ids=["other-call", "changed", "added", "trailing-space"],
)
def test_a_token_covers_the_call_and_every_parameter(
    call_sid: str, changes: dict[str, str], verdict: str
) -> None:
    tokens = CallTokens(AUTH_TOKEN)
    token = tokens.mint(CALL, PARAMETERS, NOW)
    assert tokens.check(call_sid, start_parameters(token, **changes), NOW) == verdict


def test_a_removed_parameter_is_noticed() -> None:
    tokens = CallTokens(AUTH_TOKEN)
    token = tokens.mint(CALL, PARAMETERS, NOW)
    parameters = start_parameters(token)
    del parameters["tenant"]
    assert tokens.check(CALL, parameters, NOW) == "forged"


def test_names_and_values_cannot_be_shifted_into_each_other() -> None:
    tokens = CallTokens(AUTH_TOKEN)
    token = tokens.mint(CALL, {"ab": "c"}, NOW)
    assert tokens.check(CALL, {"a": "bc", CALL_TOKEN_PARAMETER: token}, NOW) == "forged"


@pytest.mark.parametrize(
    ("offset", "verdict"),
    [
        (0.0, "ok"),
        (120.0, "ok"),
        (120.5, "expired"),
        (3600.0, "expired"),
        (-30.0, "ok"),  # the other process's clock is a little ahead
        (-31.0, "expired"),
    ],
)
def test_a_token_is_good_for_max_age(offset: float, verdict: str) -> None:
    tokens = CallTokens(AUTH_TOKEN, max_age=120)
    token = tokens.mint(CALL, PARAMETERS, NOW)
    assert tokens.check(CALL, start_parameters(token), NOW + offset) == verdict


def test_a_changed_issue_time_is_forged_not_fresh() -> None:
    tokens = CallTokens(AUTH_TOKEN)
    version, _, mac = tokens.mint(CALL, PARAMETERS, NOW - 3600).split(".")
    moved = f"{version}.{int(NOW)}.{mac}"
    assert tokens.check(CALL, start_parameters(moved), NOW) == "forged"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "v1",
        "v1.1800000000",
        "v2.1800000000." + "A" * 43,
        "v1.-1800000000." + "A" * 43,
        "v1.1e9." + "A" * 43,
        "v1.١٢٣." + "A" * 43,  # digits, but not ASCII ones
        "v1.1800000000." + "A" * 42,
        "v1.1800000000." + "A" * 43 + ".x",
        "v1.9999999999999." + "A" * 43,
    ],
)
def test_malformed_tokens(token: str) -> None:
    tokens = CallTokens(AUTH_TOKEN)
    assert tokens.check(CALL, start_parameters(token), NOW) == "malformed"


def test_a_start_without_a_token() -> None:
    assert CallTokens(AUTH_TOKEN).check(CALL, PARAMETERS, NOW) == "missing"


def test_a_refused_token_is_not_used_up() -> None:
    tokens = CallTokens(AUTH_TOKEN)
    token = tokens.mint(CALL, PARAMETERS, NOW)
    assert tokens.check(OTHER_CALL, start_parameters(token), NOW) == "forged"
    assert tokens.check(CALL, start_parameters(token), NOW) == "ok"


def test_used_tokens_are_forgotten_once_they_expire() -> None:
    tokens = CallTokens(AUTH_TOKEN, max_age=10)
    for index in range(5):
        token = tokens.mint(f"CA{index:032d}", {}, NOW)
        assert tokens.check(f"CA{index:032d}", {CALL_TOKEN_PARAMETER: token}, NOW) == "ok"
    late = tokens.mint(CALL, {}, NOW + 60)
    assert tokens.check(CALL, {CALL_TOKEN_PARAMETER: late}, NOW + 60) == "ok"
    assert len(tokens._used) == 1  # the five earlier ones were dropped, not kept forever


def test_the_auth_token_stays_secret() -> None:
    tokens = CallTokens(AUTH_TOKEN)
    token = tokens.mint(CALL, PARAMETERS, NOW)
    assert AUTH_TOKEN not in repr(tokens)
    assert AUTH_TOKEN not in token


@pytest.mark.parametrize(
    ("auth_token", "max_age", "field"),
    [
        ("", 120.0, "auth_token"),
        (None, 120.0, "auth_token"),
        ("\ud800", 120.0, "auth_token"),
        (AUTH_TOKEN, 0, "max_age"),
        (AUTH_TOKEN, float("inf"), "max_age"),
        (AUTH_TOKEN, float("nan"), "max_age"),
        (AUTH_TOKEN, True, "max_age"),
    ],
)
def test_bad_arguments(auth_token: object, max_age: object, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        CallTokens(auth_token, max_age=max_age)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert AUTH_TOKEN not in str(caught.value)


TEXT = st.text(max_size=40)
PARAMETER_MAPS = st.dictionaries(TEXT.filter(lambda name: name != CALL_TOKEN_PARAMETER), TEXT)


@given(call_sid=TEXT, parameters=PARAMETER_MAPS, now=st.integers(0, 4_000_000_000))
def test_any_parameters_round_trip(call_sid: str, parameters: dict[str, str], now: int) -> None:
    tokens = CallTokens(AUTH_TOKEN)
    token = tokens.mint(call_sid, parameters, now)
    assert tokens.check(call_sid, {**parameters, CALL_TOKEN_PARAMETER: token}, now) == "ok"


@given(call_sid=TEXT, parameters=st.dictionaries(TEXT, TEXT), now=st.floats(0, 4e9))
def test_any_start_gets_a_verdict_and_never_an_exception(
    call_sid: str, parameters: dict[str, str], now: float
) -> None:
    verdict = CallTokens(AUTH_TOKEN).check(call_sid, parameters, now)
    assert verdict in {"missing", "malformed", "forged"}
