"""X-Twilio-Signature: the reference vectors, URL handling, and keeping the token secret.

The vectors marked "twilio-python" were produced with ``twilio.request_validator`` 9.13.0 in a
throwaway environment (twilio is not a dependency); the first two are the ones in protocols.md.
"""

from __future__ import annotations

import base64
import pickle
from collections.abc import Iterator, Mapping, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicewire.errors import ConfigError
from voicewire_twilio.protocol import (
    SIGNATURE_HEADER,
    SignatureValidator,
    compute_signature,
    signature_url_candidates,
    validate_signature,
    websocket_signature_url,
)

TOKEN = "12345"
WEBHOOK_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
WEBHOOK_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
WEBHOOK_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
STREAM_URL = "wss://example.ngrok.app/media-stream"
STREAM_SIGNATURE = "Mpnh7Fb3gotnt0nF9oakdNoftvQ="
SECRET = "f3a9c0d1e2b4a5968778695a4b3c2d1e"


class MultiDict(Mapping[str, str]):
    """The part of aiohttp's/Flask's multidict the validator uses: ``getall``."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def __getitem__(self, key: str) -> str:
        return next(value for name, value in self._pairs if name == key)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def getall(self, key: str) -> list[str]:
        return [value for name, value in self._pairs if name == key]


class QueryDict(MultiDict):
    """Django's flavour: ``getlist`` instead of ``getall``."""

    getlist = MultiDict.getall
    getall = None  # type: ignore[assignment]


def test_header_name() -> None:
    assert SIGNATURE_HEADER == "X-Twilio-Signature"


def test_webhook_vector_from_protocols_md() -> None:
    assert compute_signature(TOKEN, WEBHOOK_URL, WEBHOOK_PARAMS) == WEBHOOK_SIGNATURE
    assert validate_signature(TOKEN, WEBHOOK_URL, WEBHOOK_PARAMS, WEBHOOK_SIGNATURE)


def test_websocket_vector_from_protocols_md() -> None:
    assert compute_signature(TOKEN, STREAM_URL) == STREAM_SIGNATURE
    assert compute_signature(TOKEN, STREAM_URL, {}) == STREAM_SIGNATURE
    assert validate_signature(TOKEN, STREAM_URL, None, STREAM_SIGNATURE)


def test_websocket_upgrade_seen_as_https_validates_through_the_wss_url() -> None:
    seen = "https://example.ngrok.app/media-stream?ignored=1"
    assert not validate_signature(TOKEN, seen, None, STREAM_SIGNATURE)
    assert validate_signature(TOKEN, websocket_signature_url(seen), None, STREAM_SIGNATURE)


def test_parameter_order_does_not_matter() -> None:
    reordered = dict(reversed(list(WEBHOOK_PARAMS.items())))
    assert compute_signature(TOKEN, WEBHOOK_URL, reordered) == WEBHOOK_SIGNATURE


def test_repeated_parameters_vector_from_twilio_python() -> None:
    pairs = [("To", "+1"), ("Digits", "9"), ("Digits", "1"), ("Digits", "9"), ("b", "x")]
    pairs.append(("B", "y"))
    expected = "WcYsoyNh9Dz784AenHOmgi568sw="
    url = "https://example.com/voice"
    assert compute_signature(TOKEN, url, MultiDict(pairs)) == expected
    assert compute_signature(TOKEN, url, QueryDict(pairs)) == expected
    as_lists = {"To": "+1", "Digits": ["9", "1", "9"], "b": "x", "B": "y"}
    assert compute_signature(TOKEN, url, as_lists) == expected
    assert compute_signature(TOKEN, url, {**as_lists, "Digits": ("1", "9")}) == expected


def test_unicode_vector_from_twilio_python() -> None:
    params = {"Body": "h\u00e9llo \u2713 \u65e5\u672c", "From": "+44 20"}
    expected = "GlEtA5Vo8G7chHD1K+S74O3+eBw="
    assert compute_signature(TOKEN, "https://example.com/sms", params) == expected


def test_explicit_port_vector_from_twilio_python() -> None:
    expected = "oP/ZzrE2YhvCiPn4AontLxld214="
    assert compute_signature(TOKEN, "https://example.com:443/voice", {"A": "1"}) == expected


def test_signature_shape() -> None:
    signature = compute_signature(SECRET, "https://example.com/x", {"a": "b"})
    assert len(signature) == 28
    assert len(base64.b64decode(signature, validate=True)) == 20


# --- URL handling -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signed", "seen"),
    [
        ("https://example.com/voice", "https://example.com:443/voice"),
        ("https://example.com:443/voice", "https://example.com/voice"),
        ("http://example.com/voice", "http://example.com:80/voice"),
        ("wss://example.com/media-stream", "wss://example.com:443/media-stream"),
        ("wss://example.com:443/media-stream", "wss://example.com/media-stream"),
        ("ws://127.0.0.1/media-stream", "ws://127.0.0.1:80/media-stream"),
        ("https://example.com/voice", "https://example.com:8443/voice"),
        ("https://user:pw@example.com/voice", "https://user:pw@example.com:443/voice"),
        ("https://[2001:db8::1]/voice", "https://[2001:db8::1]:443/voice"),
    ],
)
def test_port_variants_match(signed: str, seen: str) -> None:
    signature = compute_signature(SECRET, signed, {"A": "1"})
    assert validate_signature(SECRET, seen, {"A": "1"}, signature)


@pytest.mark.parametrize(
    ("signed", "seen"),
    [
        # No normalisation beyond ports: each of these is a different URL to Twilio.
        ("https://example.com/voice/", "https://example.com/voice"),
        ("https://example.com/voice", "https://example.com/voice/"),
        ("https://example.com/v?a=1&b=2", "https://example.com/v?b=2&a=1"),
        ("https://example.com/v?a=1", "https://example.com/v"),
        ("https://example.com/v%20x", "https://example.com/v x"),
        ("https://example.com/Voice", "https://example.com/voice"),
        ("https://example.com/voice", "http://example.com/voice"),
        ("https://example.com/voice", "https://example.com.evil/voice"),
        # A signed non-default port is not dropped on the validating side's behalf.
        ("https://example.com:8443/voice", "https://example.com/voice"),
        # wss:// never means port 80 (twilio-python would try that; voicewire does not).
        ("wss://example.com:80/media-stream", "wss://example.com/media-stream"),
    ],
)
def test_other_urls_do_not_match(signed: str, seen: str) -> None:
    signature = compute_signature(SECRET, signed, {"A": "1"})
    assert not validate_signature(SECRET, seen, {"A": "1"}, signature)


@pytest.mark.parametrize(
    ("url", "candidates"),
    [
        ("https://h/x", ("https://h/x", "https://h:443/x")),
        ("HTTPS://h/x", ("HTTPS://h/x", "HTTPS://h:443/x")),
        ("https://h:443/x?q=1", ("https://h:443/x?q=1", "https://h/x?q=1")),
        ("http://h", ("http://h", "http://h:80")),
        ("wss://h/m", ("wss://h/m", "wss://h:443/m")),
        ("ws://h/m", ("ws://h/m", "ws://h:80/m")),
        ("https://u:p@h/x", ("https://u:p@h/x", "https://u:p@h:443/x")),
        ("https://u:p@h:444/x", ("https://u:p@h:444/x", "https://u:p@h/x")),
        ("https://[::1]:8443/x", ("https://[::1]:8443/x", "https://[::1]/x")),
        ("https://[::1]/x", ("https://[::1]/x", "https://[::1]:443/x")),
        ("ftp://h/x", ("ftp://h/x",)),
        ("https://h:/x", ("https://h:/x",)),
        ("https://h:ab/x", ("https://h:ab/x",)),
        ("https://[::1/x", ("https://[::1/x",)),
        ("https:///x", ("https:///x",)),
        ("/relative", ("/relative",)),
        ("", ("",)),
    ],
)
def test_candidates(url: str, candidates: tuple[str, ...]) -> None:
    assert signature_url_candidates(url) == candidates


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://h.example/media-stream", "wss://h.example/media-stream"),
        ("HTTPS://h.example/media-stream?x=1#f", "wss://h.example/media-stream"),
        ("http://127.0.0.1:8080/media-stream", "ws://127.0.0.1:8080/media-stream"),
        ("wss://h.example/media-stream?token=1", "wss://h.example/media-stream"),
        ("ws://h.example", "ws://h.example"),
    ],
)
def test_websocket_signature_url(url: str, expected: str) -> None:
    assert websocket_signature_url(url) == expected


@pytest.mark.parametrize("url", ["", "/media-stream", "ftp://h/x", "https:///x", 3])
def test_websocket_signature_url_refuses_non_urls(url: object) -> None:
    with pytest.raises(ValueError, match="absolute"):
        websocket_signature_url(url)  # type: ignore[arg-type]


# --- rejection ----------------------------------------------------------------------------------


def test_tampered_parameters_do_not_match() -> None:
    tampered = {**WEBHOOK_PARAMS, "Digits": "1235"}
    assert not validate_signature(TOKEN, WEBHOOK_URL, tampered, WEBHOOK_SIGNATURE)
    extra = {**WEBHOOK_PARAMS, "Extra": ""}
    assert not validate_signature(TOKEN, WEBHOOK_URL, extra, WEBHOOK_SIGNATURE)
    assert not validate_signature(TOKEN, WEBHOOK_URL, None, WEBHOOK_SIGNATURE)


def test_wrong_token_does_not_match() -> None:
    assert not validate_signature("54321", WEBHOOK_URL, WEBHOOK_PARAMS, WEBHOOK_SIGNATURE)


@pytest.mark.parametrize(
    "signature",
    [None, "", "0/KCTR6DLpKmkAf8muzZqo1nDgQ", "0/KCTR6DLpKmkAf8muzZqo1nDgQ==", "\u00e9" * 28],
)
def test_bad_signature_values_do_not_match(signature: str | None) -> None:
    assert not validate_signature(TOKEN, WEBHOOK_URL, WEBHOOK_PARAMS, signature)


def test_non_str_signature_does_not_match() -> None:
    assert not validate_signature(TOKEN, STREAM_URL, None, b"x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "params",
    [
        {"a": 1},
        {"a": ["x", 2]},
        {1: "a"},
        {"a": object()},
        {"a": "\ud800"},
    ],
)
def test_unsignable_params_do_not_match_and_do_not_compute(params: object) -> None:
    assert not validate_signature(TOKEN, WEBHOOK_URL, params, WEBHOOK_SIGNATURE)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="parameter"):
        compute_signature(TOKEN, WEBHOOK_URL, params)  # type: ignore[arg-type]


@given(
    st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=5),
    st.text(alphabet="ABCDEFabcdef0123456789+/=", min_size=27, max_size=29),
)
def test_random_signatures_do_not_match(params: dict[str, str], signature: str) -> None:
    url = "https://example.com/voice"
    expected = compute_signature(SECRET, url, params)
    assert validate_signature(SECRET, url, params, signature) == (signature == expected)


@given(st.dictionaries(st.text(), st.text() | st.lists(st.text(), max_size=3), max_size=6))
def test_compute_then_validate_round_trips(params: Mapping[str, str | Sequence[str]]) -> None:
    url = "https://example.com/voice?x=1"
    assert validate_signature(SECRET, url, params, compute_signature(SECRET, url, params))


# --- the token stays secret ---------------------------------------------------------------------


@pytest.mark.parametrize("token", ["", None, 12345, "a\ud800b"])
def test_bad_tokens_are_refused_without_echo(token: object) -> None:
    for call in (
        lambda: compute_signature(token, STREAM_URL),  # type: ignore[arg-type]
        lambda: validate_signature(token, STREAM_URL, None, "x"),  # type: ignore[arg-type]
        lambda: SignatureValidator(token),  # type: ignore[arg-type]
    ):
        with pytest.raises((ConfigError, TypeError)) as info:
            call()
        assert "auth_token" in str(info.value)
        assert info.value.__cause__ is None
        assert info.value.__suppress_context__ or info.value.__context__ is None
        if isinstance(token, str) and token:
            assert token not in str(info.value)
            assert token not in repr(info.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda: compute_signature(SECRET, None),  # type: ignore[arg-type]
        lambda: validate_signature(SECRET, None, None, "x"),  # type: ignore[arg-type]
        lambda: compute_signature(SECRET, "https://h/x", {"a": 1}),  # type: ignore[dict-item]
    ],
)
def test_errors_never_carry_the_token(call: object) -> None:
    with pytest.raises(TypeError) as info:
        call()  # type: ignore[operator]
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)
    assert info.value.__context__ is None or SECRET not in str(info.value.__context__)


def test_validator_hides_the_token() -> None:
    validator = SignatureValidator(SECRET)
    assert SECRET not in repr(validator)
    assert SECRET not in str(validator)
    assert repr(validator) == "SignatureValidator()"


def test_validator_delegates() -> None:
    validator = SignatureValidator(TOKEN)
    assert validator.compute(WEBHOOK_URL, WEBHOOK_PARAMS) == WEBHOOK_SIGNATURE
    assert validator.validate(WEBHOOK_URL, WEBHOOK_PARAMS, WEBHOOK_SIGNATURE)
    assert not validator.validate(WEBHOOK_URL, WEBHOOK_PARAMS, STREAM_SIGNATURE)
    assert validator.compute(STREAM_URL) == STREAM_SIGNATURE


def test_validator_is_immutable() -> None:
    validator = SignatureValidator(SECRET)
    with pytest.raises(AttributeError):
        validator._auth_token = "other"  # type: ignore[misc]


def test_validator_round_trips_through_pickle() -> None:
    validator = SignatureValidator(TOKEN)
    assert pickle.loads(pickle.dumps(validator)).compute(STREAM_URL) == STREAM_SIGNATURE
