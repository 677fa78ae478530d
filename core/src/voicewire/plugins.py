"""Plugin discovery and a typed facade over pluggy.

Plugins are found through the entry-point group ``voicewire.plugins``; the entry-point name is the
plugin's id and its value a module (or object) holding hook implementations. Ids listed in
``VOICEWIRE_DISABLE_PLUGINS`` (comma-separated) are not even imported. A plugin that fails to
import, to register, or to register its transports is skipped with a :class:`PluginLoadWarning`
naming it; the host keeps running. :meth:`PluginManager.plugin_infos` reports what happened to each.

Most code needs only the process-wide manager from :func:`get_plugin_manager` (or the module
functions of :mod:`voicewire.registry`, which use it). Tests and embedding applications can build
their own :class:`PluginManager` and :meth:`~PluginManager.register` plugin objects in-process.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

import attrs
import pluggy

from voicewire import hookspecs
from voicewire.errors import PluginError, UnknownTransportError
from voicewire.registry import Registry, TransportKind, TransportSpec
from voicewire.transport import RealtimeTransportLayer

if TYPE_CHECKING:
    from voicewire.cli.base import CliCommand

__all__ = [
    "DISABLE_ENV_VAR",
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "PluginLoadWarning",
    "PluginManager",
    "PluginStatus",
    "disabled_plugin_ids",
    "get_plugin_manager",
    "reset_plugin_manager",
]

ENTRY_POINT_GROUP = "voicewire.plugins"
"""The entry-point group plugins declare themselves in; the entry-point name is the plugin id."""

DISABLE_ENV_VAR = "VOICEWIRE_DISABLE_PLUGINS"
"""Environment variable holding comma-separated plugin ids to block."""

PluginStatus = Literal["loaded", "blocked", "failed"]
"""``loaded``: registered and active; ``blocked``: disabled by id; ``failed``: see the reason."""


class PluginLoadWarning(UserWarning):
    """A plugin was skipped or misbehaved; the message names it. Filter by this category."""


@attrs.frozen(kw_only=True)
class PluginInfo:
    """What the plugin manager knows about one plugin (``voicewire plugins`` prints these).

    Attributes:
        id: The plugin id (the entry-point name, or the name given to ``register``).
        status: ``"loaded"``, ``"blocked"`` or ``"failed"``.
        distribution: The installed distribution that declares it; ``None`` for in-process plugins.
        version: That distribution's version.
        entry_point: The entry point's value (``module`` or ``module:attribute``).
        transports: Registry names the plugin registered, sorted.
        hooks: Hooks the plugin implements, sorted.
        reason: Why it is blocked or failed; ``None`` when loaded.
    """

    id: str
    status: PluginStatus
    distribution: str | None = None
    version: str | None = None
    entry_point: str | None = None
    transports: tuple[str, ...] = ()
    hooks: tuple[str, ...] = ()
    reason: str | None = None


@attrs.define
class _Record:
    # Mutable bookkeeping behind a PluginInfo; the plugin object is kept so it can be unregistered.
    id: str
    status: PluginStatus
    plugin: object = None
    distribution: str | None = None
    version: str | None = None
    entry_point: str | None = None
    reason: str | None = None


def disabled_plugin_ids(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The plugin ids blocked by ``VOICEWIRE_DISABLE_PLUGINS`` (``"a, b"`` -> ``{"a", "b"}``).

    Args:
        environ: Where to read the variable; ``os.environ`` by default.
    """
    value = (os.environ if environ is None else environ).get(DISABLE_ENV_VAR, "")
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def _distribution_of(entry_point: EntryPoint) -> tuple[str | None, str | None]:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return None, None
    name = dist.metadata["Name"]
    return (str(name) if name else None), dist.version


def _describe(exc: BaseException) -> str:
    # One line: reasons are printed in tables and warnings. pluggy's validation errors spread the
    # useful part (which argument is wrong) over several lines, so lines are joined, not dropped.
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    if len(text) > _REASON_LIMIT:
        text = text[: _REASON_LIMIT - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_REASON_LIMIT = 400


class PluginManager:
    """Typed facade over a pluggy manager for the ``voicewire`` project.

    Every hook has a typed method here (:meth:`register_transports`, :meth:`transport_created`,
    :meth:`session_observers`, :meth:`cli_commands`); hooks that plugins add themselves are called
    with :meth:`call_hook`.

    Args:
        disabled: Plugin ids to block. ``None`` reads ``VOICEWIRE_DISABLE_PLUGINS``.
        entry_point_group: The entry-point group :meth:`load_entrypoint_plugins` reads.
    """

    def __init__(
        self,
        *,
        disabled: Iterable[str] | None = None,
        entry_point_group: str = ENTRY_POINT_GROUP,
    ) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._group = entry_point_group
        self._disabled = disabled_plugin_ids() if disabled is None else frozenset(disabled)
        self._records: list[_Record] = []
        self._registry: Registry | None = None
        self._entry_points_loaded = False
        # Re-entrant: a plugin's hook may legitimately call back into the manager.
        self._lock = threading.RLock()
        # Historic: pluggy replays this call for every plugin registered from now on.
        self._pm.hook.voicewire_addhooks.call_historic(kwargs={"pluginmanager": self})

    # -- discovery and registration ------------------------------------------------------------

    @property
    def disabled(self) -> frozenset[str]:
        """The plugin ids this manager blocks."""
        return self._disabled

    def load_entrypoint_plugins(self) -> None:
        """Import and register every plugin of the entry-point group, once.

        Entry points are processed in order of id. Blocked ids are recorded without importing
        them; an entry point that fails to load or register is recorded as failed and reported
        with a :class:`PluginLoadWarning`. Calling this again does nothing.
        """
        with self._lock:
            if self._entry_points_loaded:
                return
            self._entry_points_loaded = True
            for entry_point in sorted(entry_points(group=self._group), key=lambda ep: ep.name):
                self._load_entry_point(entry_point)
            self._warn_unknown_hooks()

    def _load_entry_point(self, entry_point: EntryPoint) -> None:
        distribution, version = _distribution_of(entry_point)
        record = _Record(
            id=entry_point.name,
            status="failed",
            distribution=distribution,
            version=version,
            entry_point=entry_point.value,
        )
        earlier = self._find(entry_point.name)
        if earlier is not None:
            if earlier.distribution == distribution and earlier.entry_point == entry_point.value:
                return  # the same distribution seen twice on sys.path
            self._records.append(record)
            self._fail(
                record,
                f"id {entry_point.name!r} is already taken by distribution {earlier.distribution!r}",
            )
            return
        self._records.append(record)
        if entry_point.name in self._disabled:
            record.status = "blocked"
            record.reason = f"blocked by {DISABLE_ENV_VAR}"
            return
        try:
            plugin = entry_point.load()
        except Exception as exc:
            self._fail(record, f"import failed: {_describe(exc)}")
            return
        try:
            self._register_with_pluggy(plugin, entry_point.name)
        except Exception as exc:
            self._fail(record, f"registration failed: {_describe(exc)}")
            return
        record.plugin = plugin
        record.status = "loaded"
        if self._registry is not None:
            self._register_transports_of(record, self._registry)

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """Register an in-process plugin (a module, class or instance with hook implementations).

        If the process-wide registry is already built, the plugin's transports are added at once.

        Args:
            plugin: The object holding ``@hookimpl`` functions.
            name: The plugin id; defaults to pluggy's canonical name (the module's ``__name__``,
                or the object's ``id()``).

        Returns:
            The plugin id, or ``None`` if that id is blocked.

        Raises:
            PluginError: The id or the object is already registered, a hook implementation does
                not match its specification, or its transports cannot be registered (the plugin
                is then unregistered again).
        """
        with self._lock:
            plugin_id = name if name is not None else self._pm.get_canonical_name(plugin)
            if plugin_id in self._disabled:
                if self._find(plugin_id) is None:
                    self._records.append(
                        _Record(
                            id=plugin_id, status="blocked", reason=f"blocked by {DISABLE_ENV_VAR}"
                        )
                    )
                return None
            try:
                self._register_with_pluggy(plugin, plugin_id)
            except Exception as exc:
                raise PluginError(
                    f"cannot register plugin {plugin_id!r}: {_describe(exc)}"
                ) from exc
            self._records = [r for r in self._records if r.id != plugin_id]
            record = _Record(id=plugin_id, status="loaded", plugin=plugin)
            self._records.append(record)
            self._warn_unknown_hooks(plugin)
            if self._registry is not None:
                error = self._register_transports_of(record, self._registry, warn=False)
                if error is not None:
                    raise PluginError(f"plugin {plugin_id!r}: {record.reason}") from error
            return plugin_id

    def _register_with_pluggy(self, plugin: object, plugin_id: str) -> None:
        taken = self._pm.is_registered(plugin) or self._pm.has_plugin(plugin_id)
        try:
            self._pm.register(plugin, name=plugin_id)
        except BaseException:
            # pluggy registers implementations one by one and stops at the first invalid one
            # (or at a raising historic voicewire_addhooks), leaving the plugin half registered:
            # its earlier implementations would still be called. Undo that, unless the failure
            # was about a name or object that was already there before this call.
            if not taken and self._pm.has_plugin(plugin_id):
                self._pm.unregister(name=plugin_id)
            raise

    def unregister(self, name: str) -> None:
        """Unregister a loaded plugin and withdraw the transports it registered.

        Raises:
            PluginError: No loaded plugin has that id.
        """
        with self._lock:
            record = self._find(name)
            if record is None or record.status != "loaded":
                raise PluginError(f"no loaded plugin has the id {name!r}")
            self._pm.unregister(record.plugin, name=name)
            if self._registry is not None:
                self._registry.remove_plugin(name)
            self._records.remove(record)

    def add_hookspecs(self, module_or_class: ModuleType | type) -> None:
        """Add hook specifications (functions decorated with ``voicewire.hookspecs.hookspec``).

        Meant for ``voicewire_addhooks``. Call the new hooks with :meth:`call_hook`.
        """
        self._pm.add_hookspecs(module_or_class)

    def has_plugin(self, name: str) -> bool:
        """Whether a plugin with this id is loaded."""
        record = self._find(name)
        return record is not None and record.status == "loaded"

    def get_plugin(self, name: str) -> object | None:
        """The loaded plugin object with this id, or ``None``."""
        record = self._find(name)
        return record.plugin if record is not None and record.status == "loaded" else None

    def plugin_infos(self) -> list[PluginInfo]:
        """Every plugin this manager has seen, loaded or not, sorted by id.

        Builds the registry first (see :attr:`registry`), so that ``transports`` is filled and a
        plugin whose transports could not be registered shows as failed.
        """
        with self._lock:
            registry = self.registry
            infos = []
            for record in sorted(self._records, key=lambda r: r.id):
                loaded = record.status == "loaded"
                callers = self._pm.get_hookcallers(record.plugin) if loaded else None
                infos.append(
                    PluginInfo(
                        id=record.id,
                        status=record.status,
                        distribution=record.distribution,
                        version=record.version,
                        entry_point=record.entry_point,
                        transports=tuple(s.name for s in registry.registered_by(record.id))
                        if loaded
                        else (),
                        hooks=tuple(sorted(c.name for c in callers or ())),
                        reason=record.reason,
                    )
                )
            return infos

    # -- the registry ----------------------------------------------------------------------------

    @property
    def registry(self) -> Registry:
        """This manager's registry, filled by every loaded plugin the first time it is read."""
        with self._lock:
            if self._registry is None:
                # Assigned before filling so a plugin that looks itself up does not recurse.
                self._registry = Registry()
                self.register_transports(self._registry)
            return self._registry

    def register_transports(self, registry: Registry) -> None:
        """Call ``voicewire_register_transports`` for every loaded plugin, one at a time.

        Each plugin's registrations are attributed to it. A plugin whose implementation raises
        (a taken name, for instance) is marked failed, unregistered and reported with a
        :class:`PluginLoadWarning`; its partial registrations are withdrawn.
        """
        with self._lock:
            for record in list(self._records):
                if record.status == "loaded":
                    self._register_transports_of(record, registry)

    def _register_transports_of(
        self, record: _Record, registry: Registry, *, warn: bool = True
    ) -> Exception | None:
        hook = self._pm.hook.voicewire_register_transports
        impls = [impl for impl in hook.get_hookimpls() if impl.plugin_name == record.id]
        try:
            with registry.registering_as(record.id):
                for impl in impls:
                    if impl.hookwrapper or impl.wrapper:
                        raise PluginError("voicewire_register_transports cannot be a hook wrapper")
                    arguments = {"registry": registry}
                    impl.function(*(arguments[name] for name in impl.argnames))
        except Exception as exc:
            self._fail(
                record,
                f"voicewire_register_transports failed: {_describe(exc)}",
                warn=warn,
            )
            return exc
        return None

    def create_transport(self, name: str, /, **options: Any) -> RealtimeTransportLayer:
        """Create a model transport from this manager's registry (see ``voicewire.create_transport``).

        Raises:
            UnknownTransportError: No model transport has that name.
            PluginError: The factory returned something that is not a ``RealtimeTransportLayer``.
        """
        spec = self._lookup(name, "model_transport")
        transport = spec.factory(**options)
        if not isinstance(transport, RealtimeTransportLayer):
            raise PluginError(
                f"the factory of model transport {name!r} (plugin {spec.plugin!r}) returned a"
                f" {type(transport).__qualname__}, which is not a RealtimeTransportLayer"
            )
        self.transport_created(transport)
        return transport

    def create_edge(self, name: str, /, **options: Any) -> object:
        """Create a telephony edge from this manager's registry (see ``voicewire.create_edge``).

        Raises:
            UnknownTransportError: No telephony edge has that name.
        """
        spec = self._lookup(name, "telephony_edge")
        edge = spec.factory(**options)
        self.transport_created(edge)
        return edge

    def available_transports(self) -> dict[str, TransportKind]:
        """Every registered name mapped to its kind (see ``voicewire.available_transports``)."""
        return self.registry.available()

    def _lookup(self, name: str, kind: TransportKind) -> TransportSpec:
        try:
            return self.registry.get(name, kind)
        except UnknownTransportError as exc:
            # A user who blocked or broke the plugin of the same id wants to hear about it here.
            record = self._find(name)
            if record is None or record.status == "loaded":
                raise
            raise UnknownTransportError(
                f"{exc}; note: plugin {name!r} is {record.status} ({record.reason})"
            ) from None

    # -- hook calls --------------------------------------------------------------------------------

    def transport_created(self, transport: object) -> None:
        """Call ``voicewire_transport_created`` (done by ``create_transport``/``create_edge``)."""
        self._pm.hook.voicewire_transport_created(transport=transport)

    def session_observers(self, transport: object) -> list[object]:
        """Call ``voicewire_session_observer`` and return the observers offered (``None`` dropped).

        Call it once per session; the caller then calls the observers' methods directly.
        """
        results: list[object] = self._pm.hook.voicewire_session_observer(transport=transport)
        return [observer for observer in results if observer is not None]

    def cli_commands(self) -> list[tuple[str, CliCommand]]:
        """Call ``voicewire_cli_commands`` on each plugin: ``(plugin id, command)`` pairs.

        Plugins are asked in the order they were registered. A plugin that raises or returns
        something other than ``CliCommand`` objects is skipped with a :class:`PluginLoadWarning`.
        Name clashes are left to the caller, which knows the built-in commands.
        """
        from voicewire.cli.base import CliCommand  # the CLI package imports this module

        commands: list[tuple[str, CliCommand]] = []
        with self._lock:
            impls = self._pm.hook.voicewire_cli_commands.get_hookimpls()
            # pluggy stores implementations in reverse call order; registration order reads better.
            order = {record.id: index for index, record in enumerate(self._records)}
            for impl in sorted(impls, key=lambda i: order.get(i.plugin_name, len(order))):
                try:
                    returned = impl.function()
                    if returned is None:
                        offered = []
                    elif isinstance(returned, CliCommand):
                        offered = [returned]
                    elif isinstance(returned, Iterable):
                        offered = list(returned)
                    else:
                        raise TypeError(
                            f"expected a sequence of CliCommand, got {type(returned).__qualname__}"
                        )
                    for command in offered:
                        if not isinstance(command, CliCommand):
                            raise TypeError(
                                f"expected CliCommand objects, got {type(command).__qualname__}"
                            )
                except Exception as exc:
                    _warn(
                        f"voicewire plugin {impl.plugin_name!r}: its CLI commands are skipped:"
                        f" voicewire_cli_commands failed: {_describe(exc)}"
                    )
                    continue
                commands.extend((impl.plugin_name, command) for command in offered)
        return commands

    def call_hook(self, name: str, /, **kwargs: Any) -> list[object]:
        """Call a hook by name with keyword arguments and return the non-``None`` results.

        For hooks added through ``voicewire_addhooks``; voicewire's own hooks have typed methods.

        Raises:
            PluginError: No hook specification of that name exists.
        """
        caller = getattr(self._pm.hook, name, None)
        if caller is None or not caller.has_spec():
            raise PluginError(f"no hook specification named {name!r}")
        results: list[object] = caller(**kwargs)
        return results

    # -- helpers ---------------------------------------------------------------------------------

    def _find(self, plugin_id: str) -> _Record | None:
        return next((record for record in self._records if record.id == plugin_id), None)

    def _fail(self, record: _Record, reason: str, *, warn: bool = True) -> None:
        if record.status == "loaded" and self._pm.is_registered(record.plugin):
            self._pm.unregister(record.plugin, name=record.id)
        record.status = "failed"
        record.reason = reason
        record.plugin = None
        if warn:
            origin = f" (distribution {record.distribution})" if record.distribution else ""
            _warn(f"voicewire plugin {record.id!r}{origin} skipped: {reason}")

    def _warn_unknown_hooks(self, plugin: object | None = None) -> None:
        # A misspelled hook name would otherwise be silently never called.
        for record in self._records:
            if record.status != "loaded" or (plugin is not None and record.plugin is not plugin):
                continue
            for caller in self._pm.get_hookcallers(record.plugin) or ():
                if caller.has_spec():
                    continue
                impls = [i for i in caller.get_hookimpls() if i.plugin_name == record.id]
                if any(not impl.optionalhook for impl in impls):
                    _warn(
                        f"voicewire plugin {record.id!r} implements {caller.name!r}, which no"
                        " hook specification declares; it will not be called"
                    )

    def __repr__(self) -> str:
        loaded = [r.id for r in self._records if r.status == "loaded"]
        return f"<PluginManager loaded={loaded!r}>"


def _warn(message: str) -> None:
    warnings.warn(message, PluginLoadWarning, stacklevel=3)


_manager: PluginManager | None = None
_manager_lock = threading.Lock()


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager; created and loaded from entry points on first call."""
    global _manager
    with _manager_lock:
        if _manager is None:
            manager = PluginManager()
            manager.load_entrypoint_plugins()
            _manager = manager
        return _manager


def reset_plugin_manager() -> None:
    """Forget the process-wide manager (and its registry); the next call builds a fresh one.

    For tests: entry points are imported modules, so reloading does not re-run module code, but
    ``VOICEWIRE_DISABLE_PLUGINS`` is read again and in-process registrations are dropped.
    """
    global _manager
    with _manager_lock:
        _manager = None
