"""The registry: names of model transports and telephony edges, mapped to their factories.

Plugins fill it from the ``voicewire_register_transports`` hook. Applications use the module
functions :func:`create_transport`, :func:`create_edge` and :func:`available_transports`, which
work on the process-wide registry of :func:`voicewire.plugins.get_plugin_manager`.

There are two kinds (:data:`TransportKind`): a *model transport* talks to a realtime voice model
and is a ``RealtimeTransportLayer``; a *telephony edge* speaks one telephony provider's
media-stream dialect and is joined to a model transport by the call bridge. Both kinds share one
namespace, so a name always means one thing.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal

import attrs

from voicewire.errors import PluginError, UnknownTransportError

if TYPE_CHECKING:
    from voicewire.transport import RealtimeTransportLayer

__all__ = [
    "EdgeFactory",
    "ModelTransportFactory",
    "Registry",
    "TransportKind",
    "TransportSpec",
    "available_transports",
    "create_edge",
    "create_transport",
    "get_registry",
]

TransportKind = Literal["model_transport", "telephony_edge"]
"""``"model_transport"`` (a ``RealtimeTransportLayer``) or ``"telephony_edge"``."""

ModelTransportFactory = Callable[..., "RealtimeTransportLayer"]
"""Builds a model transport from keyword options (a transport class is a fine factory)."""

EdgeFactory = Callable[..., object]
"""Builds a telephony edge from keyword options."""

KIND_LABELS: dict[TransportKind, str] = {
    "model_transport": "model transport",
    "telephony_edge": "telephony edge",
}
_CREATE_FUNCTION: dict[TransportKind, str] = {
    "model_transport": "create_transport",
    "telephony_edge": "create_edge",
}
# Names end up on command lines (``--model-transport NAME``) and in metric attributes, so they are
# kept to one plain token.
_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


def _registrant(plugin: str | None) -> str:
    return f"plugin {plugin!r}" if plugin is not None else "the application (no plugin)"


@attrs.frozen(kw_only=True)
class TransportSpec:
    """One registry entry.

    Attributes:
        name: The registry name, e.g. ``"openai_ws"``.
        kind: ``"model_transport"`` or ``"telephony_edge"``.
        factory: Called with the caller's keyword options to build the object.
        description: One line for listings such as ``voicewire plugins``.
        plugin: Id of the plugin that registered it; ``None`` when registered outside a plugin.
    """

    name: str
    kind: TransportKind
    factory: Callable[..., object] = attrs.field(eq=False)
    description: str = ""
    plugin: str | None = None


class Registry:
    """Names of model transports and telephony edges, with their factories.

    Plugins receive a registry in ``voicewire_register_transports`` and call
    :meth:`add_model_transport` or :meth:`add_telephony_edge`. Lookups raise
    :class:`~voicewire.errors.UnknownTransportError` listing what is known.
    """

    def __init__(self) -> None:
        self._specs: dict[str, TransportSpec] = {}
        self._registrant: str | None = None
        self._registering = False

    def add_model_transport(
        self, name: str, factory: ModelTransportFactory, *, description: str = ""
    ) -> TransportSpec:
        """Register a model transport.

        Args:
            name: The registry name; letters, digits, ``_``, ``.`` and ``-``, starting with a
                letter or digit.
            factory: Called with the keyword options of ``create_transport(name, **options)``;
                must return a ``RealtimeTransportLayer``.
            description: One line shown in listings.

        Returns:
            The new entry.

        Raises:
            PluginError: The name is malformed or already taken (by either kind); the message
                names both registrants.
        """
        return self._add(name, "model_transport", factory, description)

    def add_telephony_edge(
        self, name: str, factory: EdgeFactory, *, description: str = ""
    ) -> TransportSpec:
        """Register a telephony edge.

        Args:
            name: The registry name (same rules as :meth:`add_model_transport`).
            factory: Called with the keyword options of ``create_edge(name, **options)``.
            description: One line shown in listings.

        Returns:
            The new entry.

        Raises:
            PluginError: The name is malformed or already taken (by either kind).
        """
        return self._add(name, "telephony_edge", factory, description)

    def _add(
        self, name: str, kind: TransportKind, factory: Callable[..., object], description: str
    ) -> TransportSpec:
        who = _registrant(self._registrant)
        label = KIND_LABELS[kind]
        if not isinstance(name, str) or not _NAME_PATTERN.match(name):
            raise PluginError(
                f"{who} tried to register the {label} name {name!r}: a name is letters, digits,"
                " '_', '.' and '-', starting with a letter or digit"
            )
        if not callable(factory):
            raise PluginError(
                f"{who} registered the {label} {name!r} with a factory that is not callable"
            )
        existing = self._specs.get(name)
        if existing is not None:
            raise PluginError(
                f"{label} name {name!r} is already registered as a {KIND_LABELS[existing.kind]}"
                f" by {_registrant(existing.plugin)}; {who} tried to register it again"
            )
        spec = TransportSpec(
            name=name, kind=kind, factory=factory, description=description, plugin=self._registrant
        )
        self._specs[name] = spec
        return spec

    def get(self, name: str, kind: TransportKind | None = None) -> TransportSpec:
        """Return the entry called ``name``, optionally requiring a kind.

        Raises:
            UnknownTransportError: No entry of that name (and kind). The message lists the known
                names of the kind asked for, and says so when the name exists with the other kind.
        """
        spec = self._specs.get(name)
        if spec is not None and (kind is None or spec.kind == kind):
            return spec
        raise UnknownTransportError(self._unknown_message(name, kind))

    def _unknown_message(self, name: str, kind: TransportKind | None) -> str:
        label = KIND_LABELS[kind] if kind is not None else "transport or edge"
        parts = [f"unknown {label} {name!r}"]
        other = self._specs.get(name)
        if other is not None:
            parts.append(
                f"{name!r} is a {KIND_LABELS[other.kind]}: use"
                f" {_CREATE_FUNCTION[other.kind]}({name!r})"
            )
        known = self.names(kind)
        if known:
            plural = f"{label}s" if kind is not None else "names"
            parts.append(f"known {plural}: {', '.join(known)}")
        else:
            parts.append(
                f"no {label}s are registered (install a plugin that provides one;"
                " `voicewire plugins` lists what is installed)"
            )
        return "; ".join(parts)

    def specs(self, kind: TransportKind | None = None) -> tuple[TransportSpec, ...]:
        """Every entry (of ``kind``, if given), sorted by name."""
        return tuple(
            spec for _, spec in sorted(self._specs.items()) if kind is None or spec.kind == kind
        )

    def names(self, kind: TransportKind | None = None) -> tuple[str, ...]:
        """Every registered name (of ``kind``, if given), sorted."""
        return tuple(spec.name for spec in self.specs(kind))

    def available(self) -> dict[str, TransportKind]:
        """Every registered name mapped to its kind, sorted by name."""
        return {spec.name: spec.kind for spec in self.specs()}

    def registered_by(self, plugin: str) -> tuple[TransportSpec, ...]:
        """The entries a plugin registered, sorted by name."""
        return tuple(spec for spec in self.specs() if spec.plugin == plugin)

    def remove_plugin(self, plugin: str) -> None:
        """Withdraw every entry a plugin registered (used when it is unregistered)."""
        for spec in self.registered_by(plugin):
            del self._specs[spec.name]

    @contextlib.contextmanager
    def registering_as(self, plugin: str) -> Iterator[Registry]:
        """Attribute the registrations made inside the block to ``plugin``.

        The plugin manager wraps each plugin's ``voicewire_register_transports`` call in this, so
        entries and error messages name their plugin. If the block raises, the entries it added
        are withdrawn before the exception propagates: a plugin is registered whole or not at all.
        """
        if self._registering:
            raise PluginError(
                f"cannot register transports as plugin {plugin!r} while"
                f" {_registrant(self._registrant)} is still registering"
            )
        before = set(self._specs)
        self._registering = True
        self._registrant = plugin
        try:
            yield self
        except BaseException:
            for name in set(self._specs) - before:
                del self._specs[name]
            raise
        finally:
            self._registering = False
            self._registrant = None

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"<Registry {self.available()!r}>"


def get_registry() -> Registry:
    """The process-wide registry, filled by every loaded plugin on first use."""
    # Imported here because voicewire.plugins imports this module.
    from voicewire.plugins import get_plugin_manager

    return get_plugin_manager().registry


def create_transport(name: str, /, **options: Any) -> RealtimeTransportLayer:
    """Create a model transport by registry name, e.g. ``create_transport("openai_ws")``.

    Calls the registered factory with ``options``, then the ``voicewire_transport_created``
    hook. The transport is returned unconnected.

    Raises:
        UnknownTransportError: No model transport has that name; the message lists those known.
        PluginError: The factory returned something that is not a ``RealtimeTransportLayer``.
    """
    from voicewire.plugins import get_plugin_manager

    return get_plugin_manager().create_transport(name, **options)


def create_edge(name: str, /, **options: Any) -> object:
    """Create a telephony edge by registry name, e.g. ``create_edge("twilio")``.

    Calls the registered factory with ``options``, then the ``voicewire_transport_created``
    hook.

    Raises:
        UnknownTransportError: No telephony edge has that name; the message lists those known.
    """
    from voicewire.plugins import get_plugin_manager

    return get_plugin_manager().create_edge(name, **options)


def available_transports() -> dict[str, TransportKind]:
    """Every registered model transport and telephony edge: name -> kind, sorted by name."""
    return get_registry().available()
