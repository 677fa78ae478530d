"""Builders of the GA wire objects the fake sends: sessions, errors, responses, usage, ids."""

from __future__ import annotations

import copy
import random
import string
from collections.abc import Mapping
from typing import Any

from voicewire.audio.formats import AudioFormat

__all__ = [
    "DEFAULT_SILENCE_MS",
    "IdFactory",
    "default_session",
    "error_event",
    "format_of",
    "merge_session",
    "normalise_format",
    "turn_detection_defaults",
    "usage",
]

DEFAULT_SILENCE_MS = 400
"""The fake's default ``silence_duration_ms``: between the documented 500 and the observed 200."""

_ALPHABET = string.ascii_letters + string.digits


class IdFactory:
    """Realistic-looking ids (``item_`` + 21 characters) from a seeded generator.

    Seeded per session, so a rerun of the same test sees the same ids.
    """

    def __init__(self, seed: str) -> None:
        self._rng = random.Random(seed)

    def new(self, prefix: str) -> str:
        """A fresh id such as ``resp_Ct1OZ5ukpGEZNeUWx1iOH``."""
        return prefix + "_" + "".join(self._rng.choice(_ALPHABET) for _ in range(21))


def turn_detection_defaults(kind: str) -> dict[str, Any]:
    """The full ``turn_detection`` object of a VAD type, with the fake's defaults."""
    if kind == "semantic_vad":
        return {
            "type": "semantic_vad",
            "eagerness": "auto",
            "create_response": True,
            "interrupt_response": True,
        }
    return {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": DEFAULT_SILENCE_MS,
        "idle_timeout_ms": None,
        "create_response": True,
        "interrupt_response": True,
    }


def default_session(
    *, model: str, session_id: str, expires_at: int, instructions: str
) -> dict[str, Any]:
    """The session object of ``session.created``, shaped like the real service's defaults."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "output_modalities": ["audio"],
        "instructions": instructions,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": expires_at,
        "include": None,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": turn_detection_defaults("server_vad"),
            },
            "output": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "voice": "alloy",
                "speed": 1.0,
            },
        },
    }


def normalise_format(fmt: Mapping[str, Any]) -> dict[str, Any]:
    """A GA format object as the service reports it (``audio/pcm`` always carries its rate)."""
    if fmt.get("type") == "audio/pcm":
        return {"type": "audio/pcm", "rate": int(fmt.get("rate") or 24000)}
    return {"type": str(fmt.get("type"))}


def format_of(fmt: Mapping[str, Any]) -> AudioFormat:
    """The :class:`AudioFormat` of a (valid) GA format object."""
    return AudioFormat.from_wire(normalise_format(fmt))


def _merge_audio_part(current: dict[str, Any], update: Mapping[str, Any]) -> None:
    for key, value in update.items():
        if key == "format" and isinstance(value, Mapping):
            current["format"] = normalise_format(value)
        elif key == "turn_detection" and isinstance(value, Mapping):
            old = current.get("turn_detection")
            kind = str(value.get("type", "server_vad"))
            base = old if isinstance(old, dict) and old.get("type") == kind else None
            merged = dict(base) if base is not None else turn_detection_defaults(kind)
            merged.update(copy.deepcopy(dict(value)))
            merged["type"] = kind
            current["turn_detection"] = merged
        else:
            current[key] = copy.deepcopy(value)


def merge_session(current: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Apply a (valid) ``session.update`` payload: only the fields present change.

    ``null`` clears ``turn_detection``/``noise_reduction``/``transcription``, ``""`` clears
    ``instructions``, ``[]`` clears ``tools`` (plain replacement gives all of these).
    """
    result = copy.deepcopy(dict(current))
    for key, value in update.items():
        if key == "type":
            continue
        if key == "audio" and isinstance(value, Mapping):
            audio = result.setdefault("audio", {})
            for part in ("input", "output"):
                if isinstance(value.get(part), Mapping):
                    _merge_audio_part(audio.setdefault(part, {}), value[part])
        else:
            result[key] = copy.deepcopy(value)
    return result


def error_event(
    code: str | None,
    message: str,
    *,
    param: str | None = None,
    client_event_id: str | None = None,
    error_type: str = "invalid_request_error",
) -> dict[str, Any]:
    """A GA ``error`` event (without its ``event_id``, which the sender adds)."""
    return {
        "type": "error",
        "error": {
            "type": error_type,
            "code": code,
            "message": message,
            "param": param,
            "event_id": client_event_id,
        },
    }


def usage(*, input_items: int, output_audio_ms: float, output_text: str) -> dict[str, Any]:
    """A plausible ``usage`` object: tokens grow with the conversation and the output."""
    audio_out = round(output_audio_ms / 50)
    text_out = len(output_text) // 4 + (1 if output_text else 0)
    text_in = 40 + 12 * input_items
    audio_in = 10 * input_items
    cached = (text_in // 64) * 64
    return {
        "total_tokens": text_in + audio_in + audio_out + text_out,
        "input_tokens": text_in + audio_in,
        "output_tokens": audio_out + text_out,
        "input_token_details": {
            "text_tokens": text_in,
            "audio_tokens": audio_in,
            "image_tokens": 0,
            "cached_tokens": cached,
            "cached_tokens_details": {"text_tokens": cached, "audio_tokens": 0, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
    }
