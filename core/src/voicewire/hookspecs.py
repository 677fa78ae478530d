"""Hook specifications: the points where a voicewire plugin plugs in.

A plugin is a module (or any object) with functions decorated with :data:`hookimpl` whose names
match the specifications below. Hooks are synchronous pluggy calls made a handful of times per
process or per session; nothing on the audio path goes through them. Per-frame work belongs to the
observer object a plugin returns from :func:`voicewire_session_observer`, whose methods the
transport calls directly.

A hook implementation may accept any subset of a specification's arguments, so new arguments can
be added to a specification later without breaking existing plugins.

Callers never use pluggy directly: :class:`voicewire.plugins.PluginManager` wraps every hook in a
typed method.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from voicewire.cli.base import CliCommand
    from voicewire.plugins import PluginManager
    from voicewire.registry import Registry

__all__ = [
    "PROJECT_NAME",
    "hookimpl",
    "hookspec",
    "voicewire_addhooks",
    "voicewire_cli_commands",
    "voicewire_register_transports",
    "voicewire_session_observer",
    "voicewire_transport_created",
]

PROJECT_NAME = "voicewire"
"""The pluggy project name: markers of other projects are ignored by voicewire's manager."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Decorator for hook specifications (for plugins that add hooks in :func:`voicewire_addhooks`)."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Decorator for hook implementations: ``@voicewire.hookimpl`` on a function named after a hook."""


@hookspec(historic=True)
def voicewire_addhooks(pluginmanager: PluginManager) -> None:
    """Register further hook specifications, so other plugins can implement them.

    Fires once for every plugin, right after it is registered: the call is *historic*, so a
    plugin registered late still receives it.

    Args:
        pluginmanager: The voicewire plugin manager. Call
            ``pluginmanager.add_hookspecs(module_or_class)`` with an object whose functions are
            decorated with :data:`hookspec`, and later
            ``pluginmanager.call_hook("myplugin_something", ...)`` to call them.

    Returns:
        Nothing; a return value is ignored.
    """


@hookspec
def voicewire_register_transports(registry: Registry) -> None:
    """Register model transports and telephony edges by name.

    Fires once per plugin when the process-wide registry is first needed (the first
    ``create_transport``, ``create_edge`` or ``available_transports`` call, or ``voicewire
    plugins``), and immediately for a plugin registered in-process after that. The plugin manager
    calls each plugin's implementation on its own and records which names it registered: if one
    implementation raises, only that plugin is marked failed and its names are withdrawn.
    Hook wrappers are not supported for this hook.

    Args:
        registry: Call ``registry.add_model_transport(name, factory, description=...)`` for
            something that talks to a realtime model (the factory returns a
            ``RealtimeTransportLayer``) and ``registry.add_telephony_edge(name, factory, ...)``
            for a telephony provider's media-stream dialect. Names share one namespace across
            both kinds; registering a taken name is an error naming both plugins.

    Returns:
        Nothing; a return value is ignored.
    """


@hookspec
def voicewire_transport_created(transport: object) -> None:
    """React to a model transport or telephony edge created through the registry.

    Fires after the factory returned, inside ``voicewire.create_transport`` and
    ``voicewire.create_edge``, before the object is handed to the caller. The transport is not
    connected yet. Objects built by calling a class directly do not trigger this hook.

    Args:
        transport: The new object: a ``RealtimeTransportLayer`` for a model transport, a
            telephony edge otherwise. Tell them apart with ``isinstance``.

    Returns:
        Nothing; a return value is ignored. An exception propagates to the caller of
        ``create_transport``/``create_edge``.
    """


@hookspec
def voicewire_session_observer(transport: object) -> object | None:
    """Offer an observer for one session of a transport (or call bridge).

    Fires once per session, when the transport starts it (on connect, or when a call starts),
    never per audio frame. The transport keeps the returned objects for the session and calls
    their methods directly as things happen: the ``on_*`` methods of
    :class:`voicewire.observer.SessionObserver`. Every method is optional (one the observer lacks
    is simply not called), methods must be quick, and an observer that raises is detached with a
    warning while the session goes on.

    Args:
        transport: The transport (or call bridge) whose session starts.

    Returns:
        An observer object, or ``None`` to observe nothing for this session.
    """


@hookspec
def voicewire_cli_commands() -> Sequence[CliCommand] | None:
    """Add subcommands to the ``voicewire`` command line.

    Fires once per ``voicewire`` invocation, while the argument parser is built. The plugin
    manager calls each plugin on its own: a plugin that raises, returns something else than
    ``CliCommand`` objects, or reuses a built-in or an earlier plugin's command name is skipped
    with a warning naming it.

    Returns:
        A sequence of :class:`voicewire.cli.CliCommand`: the command's name and help, a function
        that adds its arguments to an ``argparse.ArgumentParser``, and its ``run`` function
        (plain or ``async``), which receives the parsed ``argparse.Namespace`` and returns an exit
        code (``None`` means 0). ``None`` or an empty sequence adds nothing.
    """
