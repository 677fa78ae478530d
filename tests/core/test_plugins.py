"""Plugin discovery through entry points, blocking, broken plugins, and the typed hook facade.

Discovery runs against the real ``voicewire-testplugins`` distribution installed in the test
environment: ``vw_test_good`` works, ``vw_test_broken`` fails on import, ``vw_test_blocked`` works
unless blocked.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace

import pytest
import voicewire_testplugins.good as good_plugin
from voicewire_testplugins.transport import EchoTransport

from voicewire.cli.base import CliCommand
from voicewire.errors import PluginError, UnknownTransportError
from voicewire.hookspecs import hookimpl, hookspec
from voicewire.plugins import (
    DISABLE_ENV_VAR,
    PluginInfo,
    PluginLoadWarning,
    PluginManager,
    disabled_plugin_ids,
    get_plugin_manager,
    reset_plugin_manager,
)
from voicewire.registry import Registry, create_transport
from voicewire.transport import ConnectOptions

TEST_DISTRIBUTION = "voicewire-testplugins"


@pytest.fixture
def manager(monkeypatch: pytest.MonkeyPatch) -> PluginManager:
    """A manager that has loaded every installed plugin, its warnings swallowed."""
    monkeypatch.delenv(DISABLE_ENV_VAR, raising=False)
    pm = PluginManager()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginLoadWarning)
        pm.load_entrypoint_plugins()
    return pm


@pytest.fixture
def global_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginManager]:
    """A fresh process-wide manager, forgotten again after the test."""
    monkeypatch.delenv(DISABLE_ENV_VAR, raising=False)
    reset_plugin_manager()
    good_plugin.forget()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginLoadWarning)
        pm = get_plugin_manager()
    yield pm
    reset_plugin_manager()
    good_plugin.forget()


def info_of(pm: PluginManager, plugin_id: str) -> PluginInfo:
    matches = [info for info in pm.plugin_infos() if info.id == plugin_id]
    assert len(matches) == 1, pm.plugin_infos()
    return matches[0]


class TransportPlugin:
    """An in-process plugin registering one model transport."""

    def __init__(self, name: str = "inproc_echo") -> None:
        self.name = name

    @hookimpl
    def voicewire_register_transports(self, registry: Registry) -> None:
        registry.add_model_transport(self.name, EchoTransport, description="in-process echo")


# -- discovery -------------------------------------------------------------------------------


def test_discovery_loads_good_plugin_with_its_metadata(manager: PluginManager) -> None:
    info = info_of(manager, "vw_test_good")
    assert info.status == "loaded"
    assert info.reason is None
    assert info.distribution == TEST_DISTRIBUTION
    assert info.version == "0.1.0"
    assert info.entry_point == "voicewire_testplugins.good"
    assert info.transports == ("test_echo", "test_edge")
    assert info.hooks == (
        "voicewire_cli_commands",
        "voicewire_register_transports",
        "voicewire_session_observer",
        "voicewire_transport_created",
    )
    assert manager.has_plugin("vw_test_good")
    assert manager.get_plugin("vw_test_good") is good_plugin


def test_broken_plugin_is_skipped_with_a_warning_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(DISABLE_ENV_VAR, raising=False)
    pm = PluginManager()
    with pytest.warns(PluginLoadWarning, match="'vw_test_broken'.*ImportError"):
        pm.load_entrypoint_plugins()
    info = info_of(pm, "vw_test_broken")
    assert info.status == "failed"
    assert info.reason is not None
    assert "import failed" in info.reason
    assert "on purpose" in info.reason
    assert info.distribution == TEST_DISTRIBUTION
    assert info.transports == ()
    assert info.hooks == ()
    assert not pm.has_plugin("vw_test_broken")
    # The host goes on: the other plugins of the same distribution are loaded.
    assert pm.has_plugin("vw_test_good")


def test_env_var_blocks_plugins_by_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DISABLE_ENV_VAR, " vw_test_blocked , not_installed")
    pm = PluginManager()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginLoadWarning)
        pm.load_entrypoint_plugins()
    info = info_of(pm, "vw_test_blocked")
    assert info.status == "blocked"
    assert info.reason is not None
    assert DISABLE_ENV_VAR in info.reason
    assert info.distribution == TEST_DISTRIBUTION
    assert not pm.has_plugin("vw_test_blocked")
    assert "test_blocked_echo" not in pm.available_transports()
    assert pm.has_plugin("vw_test_good")


def test_without_the_env_var_the_blockable_plugin_loads(manager: PluginManager) -> None:
    assert info_of(manager, "vw_test_blocked").status == "loaded"
    assert manager.available_transports()["test_blocked_echo"] == "model_transport"


def test_blocked_plugin_is_not_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DISABLE_ENV_VAR, "vw_test_broken")
    pm = PluginManager()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pm.load_entrypoint_plugins()
    assert not [w for w in caught if "vw_test_broken" in str(w.message)]
    assert info_of(pm, "vw_test_broken").status == "blocked"


def test_explicit_disabled_argument_overrides_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(DISABLE_ENV_VAR, "vw_test_good")
    pm = PluginManager(disabled=["vw_test_blocked"])
    assert pm.disabled == frozenset({"vw_test_blocked"})


def test_disabled_plugin_ids_parses_commas_and_spaces() -> None:
    assert disabled_plugin_ids({DISABLE_ENV_VAR: "a, b,,  c ,"}) == frozenset({"a", "b", "c"})
    assert disabled_plugin_ids({}) == frozenset()
    assert disabled_plugin_ids({DISABLE_ENV_VAR: " , "}) == frozenset()


def test_loading_twice_does_nothing_the_second_time(manager: PluginManager) -> None:
    before = manager.plugin_infos()
    manager.load_entrypoint_plugins()
    assert manager.plugin_infos() == before


def test_plugin_infos_are_sorted_and_frozen(manager: PluginManager) -> None:
    infos = manager.plugin_infos()
    ids = [info.id for info in infos]
    assert ids == sorted(ids)
    with pytest.raises(AttributeError):
        infos[0].status = "failed"  # type: ignore[misc]


# -- the process-wide manager ----------------------------------------------------------------


def test_get_plugin_manager_is_loaded_once_and_reset_builds_a_new_one(
    global_manager: PluginManager,
) -> None:
    assert get_plugin_manager() is global_manager
    assert global_manager.has_plugin("vw_test_good")
    reset_plugin_manager()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginLoadWarning)
        fresh = get_plugin_manager()
    assert fresh is not global_manager
    assert fresh.has_plugin("vw_test_good")


def test_reset_rereads_the_env_var(
    global_manager: PluginManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert global_manager.has_plugin("vw_test_blocked")
    monkeypatch.setenv(DISABLE_ENV_VAR, "vw_test_blocked")
    reset_plugin_manager()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginLoadWarning)
        assert not get_plugin_manager().has_plugin("vw_test_blocked")
    with pytest.raises(UnknownTransportError, match="plugin 'vw_test_blocked' is blocked"):
        create_transport("vw_test_blocked")


# -- in-process plugins ------------------------------------------------------------------------


def test_register_in_process_plugin_before_the_registry_is_built() -> None:
    pm = PluginManager(disabled=())
    assert pm.register(TransportPlugin(), "inproc") == "inproc"
    assert pm.available_transports() == {"inproc_echo": "model_transport"}
    info = info_of(pm, "inproc")
    assert info.status == "loaded"
    assert info.distribution is None
    assert info.entry_point is None
    assert info.transports == ("inproc_echo",)
    assert info.hooks == ("voicewire_register_transports",)


def test_register_after_the_registry_is_built_adds_transports_at_once() -> None:
    pm = PluginManager(disabled=())
    assert pm.available_transports() == {}
    pm.register(TransportPlugin(), "late")
    assert pm.registry.get("inproc_echo").plugin == "late"


def test_unregister_withdraws_transports() -> None:
    pm = PluginManager(disabled=())
    pm.register(TransportPlugin(), "inproc")
    assert "inproc_echo" in pm.registry
    pm.unregister("inproc")
    assert "inproc_echo" not in pm.registry
    assert not pm.has_plugin("inproc")
    assert [info.id for info in pm.plugin_infos()] == []
    with pytest.raises(PluginError, match="no loaded plugin"):
        pm.unregister("inproc")


def test_register_default_name_is_pluggys_canonical_name() -> None:
    pm = PluginManager(disabled=())
    name = pm.register(good_plugin)
    assert name == "voicewire_testplugins.good"
    assert pm.get_plugin(name) is good_plugin


def test_register_a_blocked_id_returns_none() -> None:
    pm = PluginManager(disabled=["nope"])
    assert pm.register(TransportPlugin(), "nope") is None
    assert not pm.has_plugin("nope")
    assert info_of(pm, "nope").status == "blocked"
    assert pm.available_transports() == {}


def test_register_the_same_id_twice_is_an_error() -> None:
    pm = PluginManager(disabled=())
    pm.register(TransportPlugin("a"), "twice")
    with pytest.raises(PluginError, match="'twice'"):
        pm.register(TransportPlugin("b"), "twice")


def test_register_rejects_a_hookimpl_with_unknown_arguments() -> None:
    class Wrong:
        # Valid, and registered by pluggy before the invalid one below (alphabetical order).
        @hookimpl
        def voicewire_session_observer(self, transport: object) -> object:
            return "half-registered observer"

        @hookimpl
        def voicewire_transport_created(self, transport: object, colour: str) -> None:
            raise AssertionError("never called")

    pm = PluginManager(disabled=())
    with pytest.raises(PluginError, match=r"'wrong'.*colour"):
        pm.register(Wrong(), "wrong")
    assert not pm.has_plugin("wrong")
    # Nothing of the refused plugin stays behind.
    assert pm.session_observers(object()) == []
    # The id is free again.
    assert pm.register(TransportPlugin(), "wrong") == "wrong"


def test_entry_point_with_an_invalid_hookimpl_is_failed_not_half_loaded() -> None:
    bad = ModuleType("fake_plugin_module")

    @hookimpl
    def voicewire_session_observer(transport: object) -> object:
        return "half-registered observer"

    @hookimpl
    def voicewire_transport_created(transport: object, colour: str) -> None:
        raise AssertionError("never called")

    bad.voicewire_session_observer = voicewire_session_observer  # type: ignore[attr-defined]
    bad.voicewire_transport_created = voicewire_transport_created  # type: ignore[attr-defined]

    class FakeEntryPoint:
        name = "fake"
        value = "fake_plugin_module"

        def load(self) -> object:
            return bad

    pm = PluginManager(disabled=())
    with pytest.warns(PluginLoadWarning, match="'fake'.*registration failed"):
        pm._load_entry_point(FakeEntryPoint())  # type: ignore[arg-type]
    assert info_of(pm, "fake").status == "failed"
    assert pm.session_observers(object()) == []


def test_unknown_hook_name_is_reported() -> None:
    class Typo:
        @hookimpl
        def voicewire_transport_creatd(self, transport: object) -> None:
            raise AssertionError("never called")

    pm = PluginManager(disabled=())
    with pytest.warns(PluginLoadWarning, match="'typo' implements 'voicewire_transport_creatd'"):
        pm.register(Typo(), "typo")


# -- voicewire_register_transports -----------------------------------------------------------


def test_register_transports_failure_marks_only_that_plugin_failed() -> None:
    class Half:
        @hookimpl
        def voicewire_register_transports(self, registry: Registry) -> None:
            registry.add_model_transport("half_one", EchoTransport)
            raise RuntimeError("second transport is misconfigured")

    pm = PluginManager(disabled=())
    pm.register(TransportPlugin(), "fine")
    pm.register(Half(), "half")
    with pytest.warns(PluginLoadWarning, match="'half'.*misconfigured"):
        available = pm.available_transports()
    # Whole or nothing: the name registered before the failure is withdrawn.
    assert available == {"inproc_echo": "model_transport"}
    info = info_of(pm, "half")
    assert info.status == "failed"
    assert info.reason is not None
    assert "RuntimeError: second transport is misconfigured" in info.reason
    assert not pm.has_plugin("half")


def test_duplicate_transport_name_fails_the_second_plugin_naming_both() -> None:
    pm = PluginManager(disabled=())
    pm.register(TransportPlugin("shared"), "first")
    pm.register(TransportPlugin("shared"), "second")
    with pytest.warns(PluginLoadWarning, match="'second'"):
        registry = pm.registry
    assert registry.get("shared").plugin == "first"
    reason = info_of(pm, "second").reason
    assert reason is not None
    assert "'first'" in reason
    assert "'second'" in reason


def test_late_registration_with_a_taken_name_raises() -> None:
    pm = PluginManager(disabled=())
    pm.register(TransportPlugin("shared"), "first")
    assert "shared" in pm.registry
    with pytest.raises(PluginError, match="already registered"):
        pm.register(TransportPlugin("shared"), "late")
    assert not pm.has_plugin("late")
    assert info_of(pm, "late").status == "failed"
    assert pm.registry.get("shared").plugin == "first"


def test_register_transports_into_a_given_registry_attributes_names() -> None:
    pm = PluginManager(disabled=())
    pm.register(TransportPlugin(), "mine")
    registry = Registry()
    pm.register_transports(registry)
    assert [spec.name for spec in registry.registered_by("mine")] == ["inproc_echo"]


def test_register_transports_hook_wrapper_is_refused() -> None:
    class Wrapper:
        @hookimpl(wrapper=True)
        def voicewire_register_transports(self, registry: Registry) -> Iterator[None]:
            yield

    pm = PluginManager(disabled=())
    pm.register(Wrapper(), "wrapper")
    with pytest.warns(PluginLoadWarning, match="hook wrapper"):
        pm.register_transports(Registry())
    assert info_of(pm, "wrapper").status == "failed"


# -- voicewire_transport_created -------------------------------------------------------------


def test_transport_created_hook_sees_every_created_object() -> None:
    seen: list[object] = []

    class Recorder:
        @hookimpl
        def voicewire_transport_created(self, transport: object) -> None:
            seen.append(transport)

    pm = PluginManager(disabled=())
    pm.register(TransportPlugin(), "transports")
    pm.register(Recorder(), "recorder")
    transport = pm.create_transport("inproc_echo", label="x")
    assert seen == [transport]
    assert isinstance(transport, EchoTransport)
    assert transport.label == "x"


def test_transport_created_hook_of_the_installed_plugin(global_manager: PluginManager) -> None:
    transport = create_transport("test_echo")
    assert good_plugin.created == [transport]


def test_transport_created_error_propagates() -> None:
    class Angry:
        @hookimpl
        def voicewire_transport_created(self, transport: object) -> None:
            raise ValueError("refused")

    pm = PluginManager(disabled=())
    pm.register(TransportPlugin(), "transports")
    pm.register(Angry(), "angry")
    with pytest.raises(ValueError, match="refused"):
        pm.create_transport("inproc_echo")


# -- voicewire_session_observer --------------------------------------------------------------


def test_session_observers_collects_offers_and_drops_none() -> None:
    class Offers:
        def __init__(self, observer: object) -> None:
            self.observer = observer

        @hookimpl
        def voicewire_session_observer(self, transport: object) -> object | None:
            return self.observer

    first, second = SimpleNamespace(), SimpleNamespace()
    pm = PluginManager(disabled=())
    pm.register(Offers(first), "first")
    pm.register(Offers(None), "nothing")
    pm.register(Offers(second), "second")
    observers = pm.session_observers(object())
    assert len(observers) == 2
    assert any(o is first for o in observers)
    assert any(o is second for o in observers)


async def test_session_observer_of_the_installed_plugin_sees_one_session(
    global_manager: PluginManager,
) -> None:
    transport = create_transport("test_echo")
    assert isinstance(transport, EchoTransport)
    await transport.connect(ConnectOptions())
    await transport.close()
    assert len(good_plugin.observers) == 1
    observer = good_plugin.observers[0]
    assert observer.transport is transport
    assert observer.statuses == ["connecting", "connected", "disconnecting", "disconnected"]


# -- voicewire_cli_commands ------------------------------------------------------------------


def _command(name: str) -> CliCommand:
    return CliCommand(name=name, help=f"{name} help", run=lambda args: 0)


def test_cli_commands_are_paired_with_their_plugin_in_registration_order() -> None:
    class Commands:
        def __init__(self, *names: str) -> None:
            self.names = names

        @hookimpl
        def voicewire_cli_commands(self) -> list[CliCommand]:
            return [_command(name) for name in self.names]

    pm = PluginManager(disabled=())
    pm.register(Commands("one", "two"), "a")
    pm.register(Commands("three"), "b")
    assert [(plugin, command.name) for plugin, command in pm.cli_commands()] == [
        ("a", "one"),
        ("a", "two"),
        ("b", "three"),
    ]


def test_cli_commands_of_the_installed_plugin(manager: PluginManager) -> None:
    pairs = [(plugin, command.name) for plugin, command in manager.cli_commands()]
    assert ("vw_test_good", "test-hello") in pairs


def test_cli_commands_bad_return_or_error_skips_that_plugin() -> None:
    class ReturnsText:
        @hookimpl
        def voicewire_cli_commands(self) -> object:
            return "not commands"

    class Raises:
        @hookimpl
        def voicewire_cli_commands(self) -> list[CliCommand]:
            raise RuntimeError("no commands today")

    class Single:
        @hookimpl
        def voicewire_cli_commands(self) -> CliCommand:
            return _command("single")

    pm = PluginManager(disabled=())
    pm.register(ReturnsText(), "text")
    pm.register(Raises(), "raises")
    pm.register(Single(), "single")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pairs = pm.cli_commands()
    assert [(plugin, command.name) for plugin, command in pairs] == [("single", "single")]
    messages = [str(w.message) for w in caught if issubclass(w.category, PluginLoadWarning)]
    assert any("'text'" in m and "CliCommand" in m for m in messages)
    assert any("'raises'" in m and "no commands today" in m for m in messages)


# -- voicewire_addhooks ----------------------------------------------------------------------


class GreetingSpecs:
    @hookspec
    def greeting_words(self, who: str) -> str:  # type: ignore[empty-body]
        """Return a greeting for ``who``."""


def test_addhooks_lets_a_plugin_add_hooks_for_others() -> None:
    class AddsHooks:
        @hookimpl
        def voicewire_addhooks(self, pluginmanager: PluginManager) -> None:
            pluginmanager.add_hookspecs(GreetingSpecs)

    class Greeter:
        @hookimpl
        def greeting_words(self, who: str) -> str:
            return f"hi {who}"

    pm = PluginManager(disabled=())
    with pytest.raises(PluginError, match="greeting_words"):
        pm.call_hook("greeting_words", who="x")
    # Registered after the manager made its (historic) voicewire_addhooks call: it is replayed.
    pm.register(AddsHooks(), "adds")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginLoadWarning)  # the hook is known: no warning
        pm.register(Greeter(), "greeter")
    assert pm.call_hook("greeting_words", who="ann") == ["hi ann"]
    assert "voicewire_addhooks" in info_of(pm, "adds").hooks
