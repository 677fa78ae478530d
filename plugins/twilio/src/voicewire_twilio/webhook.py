"""Twilio's side of a call's start: the voice webhook, then the stream its TwiML names.

When a call comes in, Twilio POSTs the voice webhook (signed), reads the ``<Connect><Stream>`` of
the TwiML it gets back, and opens that stream with the TwiML's ``<Parameter>`` values in
``start.customParameters``. :func:`ring` does the same for the simulated caller, so a test (or
``voicewire call --webhook URL``) goes through the whole path a real call takes, call tokens
included::

    stream_url, dialect = await ring("http://127.0.0.1:8080/twiml", auth_token=token)
    async with SimulatedCaller(stream_url, dialect) as caller:
        ...
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Final

import aiohttp

from voicewire.errors import VoicewireError
from voicewire_twilio.caller import TwilioDialect, new_sid
from voicewire_twilio.protocol import SIGNATURE_HEADER, compute_signature

__all__ = ["WebhookError", "ring"]

_MAX_TWIML_BYTES: Final = 64 * 1024


class WebhookError(VoicewireError):
    """The webhook did not answer with TwiML that connects a stream."""


async def ring(
    webhook_url: str,
    *,
    auth_token: str | None = None,
    signed_url: str | None = None,
    account_sid: str | None = None,
    from_number: str = "+15550100001",
    to_number: str = "+15550100002",
    timeout: float = 10.0,
) -> tuple[str, TwilioDialect]:
    """POST a voice webhook as Twilio does when a call comes in; the stream its TwiML names.

    The form carries a new ``CallSid``, ``AccountSid``, ``From``, ``To``, ``CallStatus``
    (``ringing``), ``Direction`` (``inbound``) and ``ApiVersion``; with ``auth_token`` it is
    signed over ``signed_url``, the URL Twilio was configured with (default: ``webhook_url``
    exactly as given; set it when a proxy or tunnel stands between).

    Returns:
        The ``url`` of the TwiML's ``<Connect><Stream>``, and a :class:`TwilioDialect` for that
        call: its ``callSid`` and account, the TwiML's ``<Parameter>`` values as
        ``customParameters``, and the upgrade signed over that URL when ``auth_token`` is given.

    Raises:
        WebhookError: The webhook answered another status than 200, or no ``<Connect><Stream
            url=...>`` TwiML. Its message never contains the auth token.
        aiohttp.ClientError: The webhook could not be reached.
    """
    call_sid = new_sid("CA")
    account = account_sid or new_sid("AC")
    form = {
        "CallSid": call_sid,
        "AccountSid": account,
        "From": from_number,
        "To": to_number,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
    }
    signed = signed_url or webhook_url
    headers = {SIGNATURE_HEADER: compute_signature(auth_token, signed, form)} if auth_token else {}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http,
        http.post(webhook_url, data=form, headers=headers) as response,
    ):
        status = response.status
        body = b""
        async for chunk in response.content.iter_chunked(8192):
            body += chunk
            if len(body) > _MAX_TWIML_BYTES:
                break
    if status != 200:
        raise WebhookError(f"the webhook answered HTTP {status}, not 200 with TwiML")
    if len(body) > _MAX_TWIML_BYTES:
        raise WebhookError(f"the webhook's answer is larger than {_MAX_TWIML_BYTES} bytes")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise WebhookError(f"the webhook's answer is not XML: {exc}") from None
    stream = root.find("./Connect/Stream") if root.tag == "Response" else None
    url = stream.get("url") if stream is not None else None
    if stream is None or not url:
        raise WebhookError("the webhook's TwiML has no <Connect><Stream url=...>")
    parameters: dict[str, str] = {}
    for parameter in stream.findall("Parameter"):
        name, value = parameter.get("name"), parameter.get("value")
        if name is None or value is None:
            raise WebhookError("a <Parameter> of the TwiML lacks its name or value")
        parameters[name] = value
    dialect = TwilioDialect(
        auth_token=auth_token,
        signed_url=url,
        call_sid=call_sid,
        account_sid=account,
        custom_parameters=parameters,
    )
    return url, dialect
