"""connect_stream_twiml: the document of protocols.md §1.1, escaping, and refused URLs."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicewire_twilio.protocol import TwilioBuildError, connect_stream_twiml

URL = "wss://bridge.example.com/media-stream"
DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


def _stream(document: str) -> ET.Element:
    root = ET.fromstring(document)
    assert root.tag == "Response"
    (connect,) = list(root)
    assert connect.tag == "Connect"
    (stream,) = list(connect)
    assert stream.tag == "Stream"
    return stream


def test_without_parameters() -> None:
    assert connect_stream_twiml(URL) == (
        f'{DECLARATION}<Response><Connect><Stream url="{URL}"/></Connect></Response>'
    )


def test_the_protocols_md_example() -> None:
    document = connect_stream_twiml(
        URL,
        {"tenant": "acme", "callerName": "Jane"},
        name="ai-bridge",
        status_callback="https://bridge.example.com/stream-status",
        status_callback_method="POST",
    )
    assert document == (
        f"{DECLARATION}<Response><Connect>"
        f'<Stream url="{URL}" name="ai-bridge" '
        'statusCallback="https://bridge.example.com/stream-status" '
        'statusCallbackMethod="POST">'
        '<Parameter name="tenant" value="acme"/>'
        '<Parameter name="callerName" value="Jane"/>'
        "</Stream></Connect></Response>"
    )
    stream = _stream(document)
    assert stream.attrib == {
        "url": URL,
        "name": "ai-bridge",
        "statusCallback": "https://bridge.example.com/stream-status",
        "statusCallbackMethod": "POST",
    }
    assert [(p.tag, p.attrib) for p in stream] == [
        ("Parameter", {"name": "tenant", "value": "acme"}),
        ("Parameter", {"name": "callerName", "value": "Jane"}),
    ]


def test_special_characters_are_escaped() -> None:
    tricky = {'a"b': "<x>&'\"", "tab": "1\t2\n3\r4", "empty": ""}
    document = connect_stream_twiml("wss://h.example/a&b", tricky, name='"><Hangup/>')
    assert "<Hangup" not in document
    assert "&amp;" in document
    stream = _stream(document)
    assert stream.attrib["url"] == "wss://h.example/a&b"
    assert stream.attrib["name"] == '"><Hangup/>'
    assert {p.attrib["name"]: p.attrib["value"] for p in stream} == tricky


xml_text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\ufffe\uffff").filter(
        lambda c: c in "\t\n\r" or ord(c) >= 0x20
    )
)


@given(st.dictionaries(xml_text.filter(bool), xml_text, max_size=5), xml_text.filter(bool))
def test_any_legal_text_round_trips(parameters: dict[str, str], name: str) -> None:
    stream = _stream(connect_stream_twiml(URL, parameters, name=name))
    assert stream.attrib["name"] == name
    assert [(p.attrib["name"], p.attrib["value"]) for p in stream] == list(parameters.items())


def test_insecure_scheme_only_on_request() -> None:
    with pytest.raises(TwilioBuildError, match="scheme"):
        connect_stream_twiml("ws://127.0.0.1:8080/media-stream")
    document = connect_stream_twiml("ws://127.0.0.1:8080/media-stream", allow_insecure=True)
    assert _stream(document).attrib["url"] == "ws://127.0.0.1:8080/media-stream"


def test_uppercase_scheme_is_accepted() -> None:
    assert _stream(connect_stream_twiml("WSS://h.example/m")).attrib["url"] == "WSS://h.example/m"


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("", "empty"),
        ("wss://h.example/m?token=1", "query"),
        ("wss://h.example/m#x", "fragment"),
        ("https://h.example/m", "scheme"),
        ("http://h.example/m", "scheme"),
        ("/media-stream", "absolute"),
        ("wss:///media-stream", "absolute"),
        ("wss://h.example/a b", "absolute"),
        ("wss://h.example/m\n", "absolute"),
        ("wss://h.example/\x00", "XML"),
    ],
)
def test_bad_stream_urls(url: str, match: str) -> None:
    with pytest.raises(TwilioBuildError, match=match) as info:
        connect_stream_twiml(url)
    assert info.value.field == "stream_url"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"parameters": {"": "x"}}, "parameters"),
        ({"parameters": {"a": "\x01"}}, "parameters"),
        ({"parameters": {"a\ud800": "x"}}, "parameters"),
        ({"parameters": {"a": "\uffff"}}, "parameters"),
        ({"name": ""}, "name"),
        ({"name": "\x0b"}, "name"),
        ({"status_callback": "wss://h/cb"}, "status_callback"),
        ({"status_callback": "/cb"}, "status_callback"),
        ({"status_callback_method": "PUT"}, "status_callback_method"),
    ],
)
def test_bad_values(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(TwilioBuildError) as info:
        connect_stream_twiml(URL, **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


@pytest.mark.parametrize(
    "kwargs",
    [{"parameters": {"a": 1}}, {"parameters": {1: "a"}}, {"name": 3}],
)
def test_non_str_values_are_type_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(TypeError):
        connect_stream_twiml(URL, **kwargs)  # type: ignore[arg-type]


def test_non_str_url_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="stream_url"):
        connect_stream_twiml(None)  # type: ignore[arg-type]


def test_get_status_callback_method() -> None:
    stream = _stream(connect_stream_twiml(URL, status_callback_method="GET"))
    assert stream.attrib["statusCallbackMethod"] == "GET"
