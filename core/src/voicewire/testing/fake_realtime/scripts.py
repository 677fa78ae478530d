"""Scripts for the fake server's ``script`` mode: what the "model" answers, turn by turn.

A script is JSON (or the equivalent Python objects)::

    {
      "turns": [
        {"user": "what time is it?",
         "reply": [{"function_call": {"name": "get_time", "arguments": {}}},
                   {"say": "It is twelve o'clock.", "ms": 1500}]},
        {"reply": [{"say": "Let me tell you a long story ...", "ms": 9000}]}
      ],
      "fallback": [{"say": "That is all I know.", "ms": 900}]
    }

A bare list is taken as the list of turns. Each turn is used once, in order. Each response the
server creates takes the next steps of the current turn, up to and including the first
``function_call`` (a function call ends its response: the client runs the tool, returns a
``function_call_output`` and asks for a response, which continues the turn). A response that
follows new user input (committed audio or a user message) starts the next turn, abandoning
whatever the previous turn had left; so does a response that finds the current turn used up.
An interrupted (cancelled) response abandons the rest of its turn. When the turns run out,
every response plays ``fallback``.

Steps:

- ``{"say": TEXT, "ms": N}``: an assistant message of N ms of speech-like audio with TEXT as its
  transcript (``ms`` may be left out: about 65 ms per character, at least 300 ms). Under
  ``output_modalities: ["text"]`` it becomes a text message instead.
- ``{"function_call": {"name": NAME, "arguments": STRING_OR_OBJECT, "call_id": ID}}``: a
  function call item (``arguments`` defaults to ``"{}"``; objects are serialised to JSON;
  ``call_id`` is generated when left out).
- ``{"echo": true}``: play back the caller's last utterance, as in ``echo`` mode.

A turn may carry ``"user": TEXT``, which the fake reports as the input transcription of the user
audio that opens the turn (when the session asks for transcription).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from voicewire.errors import ConfigError

__all__ = [
    "DEMO_SCRIPT",
    "Echo",
    "FunctionCall",
    "Say",
    "Script",
    "ScriptCursor",
    "Step",
    "Turn",
    "estimate_speech_ms",
]

_MS_PER_CHAR = 65
_MIN_SAY_MS = 300


def estimate_speech_ms(text: str) -> int:
    """A plausible spoken length for ``text``: about 65 ms per character, at least 300 ms."""
    return max(_MIN_SAY_MS, _MS_PER_CHAR * len(text))


@attrs.frozen(kw_only=True)
class Say:
    """Speak ``text`` (speech-like audio of ``ms`` milliseconds with ``text`` as transcript)."""

    text: str
    ms: int | None = None

    @property
    def duration_ms(self) -> int:
        """``ms``, or an estimate from the text's length."""
        return self.ms if self.ms is not None else estimate_speech_ms(self.text)


@attrs.frozen(kw_only=True)
class FunctionCall:
    """Call a function: ``arguments`` is the JSON string the model would produce."""

    name: str
    arguments: str = "{}"
    call_id: str | None = None


@attrs.frozen
class Echo:
    """Play back the caller's last utterance."""


Step = Say | FunctionCall | Echo
"""One thing a scripted response does."""


@attrs.frozen(kw_only=True)
class Turn:
    """One scripted exchange: optional expected user text, then the reply steps."""

    reply: tuple[Step, ...]
    user: str | None = None


def _fail(path: str, message: str) -> ConfigError:
    return ConfigError(f"script{path}", message)


def _only_keys(obj: Mapping[str, Any], allowed: set[str], path: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise _fail(path, f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")


def _parse_step(obj: Any, path: str) -> Step:
    if not isinstance(obj, Mapping):
        raise _fail(path, f"a step is an object, got {type(obj).__name__}")
    if "say" in obj:
        _only_keys(obj, {"say", "ms"}, path)
        text, ms = obj["say"], obj.get("ms")
        if not isinstance(text, str):
            raise _fail(f"{path}.say", "must be a string")
        if ms is not None and (isinstance(ms, bool) or not isinstance(ms, int) or ms <= 0):
            raise _fail(f"{path}.ms", f"must be a positive int, got {ms!r}")
        return Say(text=text, ms=ms)
    if "function_call" in obj:
        _only_keys(obj, {"function_call"}, path)
        call = obj["function_call"]
        if not isinstance(call, Mapping):
            raise _fail(f"{path}.function_call", "must be an object")
        _only_keys(call, {"name", "arguments", "call_id"}, f"{path}.function_call")
        name, arguments, call_id = (
            call.get("name"),
            call.get("arguments", "{}"),
            call.get("call_id"),
        )
        if not isinstance(name, str) or not name:
            raise _fail(f"{path}.function_call.name", "must be a non-empty string")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, separators=(",", ":"))
        if call_id is not None and not isinstance(call_id, str):
            raise _fail(f"{path}.function_call.call_id", "must be a string")
        return FunctionCall(name=name, arguments=arguments, call_id=call_id)
    if "echo" in obj:
        _only_keys(obj, {"echo"}, path)
        if obj["echo"] is not True:
            raise _fail(f"{path}.echo", "must be true")
        return Echo()
    raise _fail(path, f"unknown step {dict(obj)!r}; a step has 'say', 'function_call' or 'echo'")


def _parse_steps(obj: Any, path: str) -> tuple[Step, ...]:
    if not isinstance(obj, Sequence) or isinstance(obj, (str, bytes)):
        raise _fail(path, "must be a list of steps")
    return tuple(_parse_step(step, f"{path}[{i}]") for i, step in enumerate(obj))


def _parse_turn(obj: Any, path: str) -> Turn:
    if not isinstance(obj, Mapping):
        raise _fail(path, f"a turn is an object, got {type(obj).__name__}")
    _only_keys(obj, {"user", "reply"}, path)
    if "reply" not in obj:
        raise _fail(path, "a turn needs 'reply'")
    user = obj.get("user")
    if user is not None and not isinstance(user, str):
        raise _fail(f"{path}.user", "must be a string")
    return Turn(reply=_parse_steps(obj["reply"], f"{path}.reply"), user=user)


_DEFAULT_FALLBACK: tuple[Step, ...] = (Say(text="I have nothing more to say.", ms=1200),)


@attrs.frozen(kw_only=True)
class Script:
    """A parsed script: turns used in order, then ``fallback`` for every later response."""

    turns: tuple[Turn, ...]
    fallback: tuple[Step, ...] = _DEFAULT_FALLBACK

    @classmethod
    def from_obj(cls, obj: Any) -> Script:
        """Build a script from parsed JSON (an object with ``turns``, or a list of turns).

        Raises:
            ConfigError: The script is malformed; ``field`` is the path of the bad part.
        """
        if isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)):
            obj = {"turns": obj}
        if not isinstance(obj, Mapping):
            raise _fail("", f"must be an object or a list of turns, got {type(obj).__name__}")
        _only_keys(obj, {"turns", "fallback"}, "")
        turns_obj = obj.get("turns")
        if not isinstance(turns_obj, Sequence) or isinstance(turns_obj, (str, bytes)):
            raise _fail(".turns", "must be a list of turns")
        turns = tuple(_parse_turn(t, f".turns[{i}]") for i, t in enumerate(turns_obj))
        if "fallback" in obj:
            return cls(turns=turns, fallback=_parse_steps(obj["fallback"], ".fallback"))
        return cls(turns=turns)

    @classmethod
    def from_json(cls, text: str) -> Script:
        """Parse a script from JSON text.

        Raises:
            ConfigError: The text is not JSON, or the script is malformed.
        """
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _fail("", f"not valid JSON: {exc}") from None
        return cls.from_obj(obj)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Script:
        """Read and parse a JSON script file.

        Raises:
            ConfigError: The file cannot be read, or its content is not a valid script.
        """
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError("script", f"cannot read {os.fspath(path)!r}: {exc}") from None
        return cls.from_json(text)


DEMO_SCRIPT = Script(
    turns=(
        Turn(
            user="What time is it?",
            reply=(
                FunctionCall(name="get_time", arguments="{}"),
                Say(text="It is exactly the time the tool told me. Anything else?", ms=2400),
            ),
        ),
        Turn(
            user="Tell me about the opening hours.",
            reply=(
                Say(
                    text=(
                        "Sure. We open at nine in the morning on weekdays and at ten on "
                        "Saturdays, we close at six in the evening except on Thursdays when we "
                        "stay open until eight, and on Sundays and public holidays we are closed, "
                        "although the online shop keeps taking orders around the clock."
                    ),
                    ms=9000,
                ),
            ),
        ),
    ),
    fallback=(Say(text="Goodbye!", ms=800),),
)
"""The script behind ``voicewire demo``: a tool call, then a long answer to barge in on."""


class ScriptCursor:
    """Where one session is in a script (each session starts from the first turn)."""

    def __init__(self, script: Script) -> None:
        self._script = script
        self._turn = -1
        self._remaining: tuple[Step, ...] = ()

    def peek_user_text(self) -> str | None:
        """The ``user`` text of the turn that new user input would open, if any."""
        nxt = self._turn + 1
        return self._script.turns[nxt].user if nxt < len(self._script.turns) else None

    def next_steps(self, *, new_user_input: bool) -> tuple[Step, ...]:
        """The steps of the next response (see the module docs for the rules)."""
        if new_user_input or not self._remaining:
            self._turn += 1
            if self._turn < len(self._script.turns):
                self._remaining = self._script.turns[self._turn].reply
            else:
                self._turn = len(self._script.turns)
                self._remaining = ()
                return self._script.fallback
        for i, step in enumerate(self._remaining):
            if isinstance(step, FunctionCall):
                steps, self._remaining = self._remaining[: i + 1], self._remaining[i + 1 :]
                return steps
        steps, self._remaining = self._remaining, ()
        return steps

    def abandon_turn(self) -> None:
        """Drop what is left of the current turn (its response was interrupted)."""
        self._remaining = ()
