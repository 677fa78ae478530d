"""The registry of model transports and telephony edges, and the module functions over it."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
import voicewire_testplugins.good as good_plugin
from voicewire_testplugins.transport import EchoTransport, LoopbackEdge

from voicewire.errors import PluginError, UnknownTransportError
from voicewire.events import AudioEvent, ConnectionChangeEvent
from voicewire.hookspecs import hookimpl
from voicewire.plugins import (
    DISABLE_ENV_VAR,
    PluginLoadWarning,
    PluginManager,
    get_plugin_manager,
    reset_plugin_manager,
)
from voicewire.registry import (
    Registry,
    TransportSpec,
    available_transports,
    create_edge,
    create_transport,
    get_registry,
)
from voicewire.transport import ConnectOptions, RealtimeTransportLayer


def _edge_factory(**options: object) -> object:
    return LoopbackEdge()


@pytest.fixture
def registry() -> Registry:
    registry = Registry()
    with registry.registering_as("models"):
        registry.add_model_transport("zeta", EchoTransport, description="last")
        registry.add_model_transport("alpha", EchoTransport)
    with registry.registering_as("phones"):
        registry.add_telephony_edge("phone", _edge_factory, description="an edge")
    return registry


@pytest.fixture
def global_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginManager]:
    monkeypatch.delenv(DISABLE_ENV_VAR, raising=False)
    reset_plugin_manager()
    good_plugin.forget()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginLoadWarning)
        pm = get_plugin_manager()
    yield pm
    reset_plugin_manager()
    good_plugin.forget()


# -- the Registry class ----------------------------------------------------------------------


def test_entries_record_kind_description_and_plugin(registry: Registry) -> None:
    assert registry.get("zeta") == TransportSpec(
        name="zeta",
        kind="model_transport",
        factory=EchoTransport,
        description="last",
        plugin="models",
    )
    phone = registry.get("phone", "telephony_edge")
    assert phone.kind == "telephony_edge"
    assert phone.plugin == "phones"
    assert phone.factory is _edge_factory


def test_listings_are_sorted_and_filter_by_kind(registry: Registry) -> None:
    assert registry.available() == {
        "alpha": "model_transport",
        "phone": "telephony_edge",
        "zeta": "model_transport",
    }
    assert list(registry.available()) == ["alpha", "phone", "zeta"]
    assert registry.names("model_transport") == ("alpha", "zeta")
    assert registry.names("telephony_edge") == ("phone",)
    assert list(registry) == ["alpha", "phone", "zeta"]
    assert len(registry) == 3
    assert "alpha" in registry
    assert "nothing" not in registry
    assert [spec.name for spec in registry.registered_by("models")] == ["alpha", "zeta"]


def test_duplicate_name_names_both_plugins(registry: Registry) -> None:
    with (
        pytest.raises(PluginError, match=r"'zeta'.*plugin 'models'.*plugin 'intruder'"),
        registry.registering_as("intruder"),
    ):
        registry.add_model_transport("zeta", EchoTransport)
    assert registry.get("zeta").plugin == "models"


def test_names_are_shared_across_kinds(registry: Registry) -> None:
    with pytest.raises(PluginError, match="already registered as a telephony edge"):
        registry.add_model_transport("phone", EchoTransport)


def test_duplicate_outside_a_plugin_names_the_application() -> None:
    registry = Registry()
    registry.add_model_transport("x", EchoTransport)
    assert registry.get("x").plugin is None
    with pytest.raises(PluginError, match=r"the application \(no plugin\)"):
        registry.add_telephony_edge("x", _edge_factory)


@pytest.mark.parametrize("name", ["", "has space", "-leading", "slash/name", "new\nline"])
def test_malformed_names_are_refused(name: str) -> None:
    with pytest.raises(PluginError, match="name"):
        Registry().add_model_transport(name, EchoTransport)


def test_well_formed_names_are_accepted() -> None:
    registry = Registry()
    for name in ("openai_ws", "twilio", "a.b-c_9", "X1"):
        registry.add_model_transport(name, EchoTransport)
    assert len(registry) == 4


def test_factory_must_be_callable() -> None:
    with pytest.raises(PluginError, match="not callable"):
        Registry().add_telephony_edge("edge", "not a factory")  # type: ignore[arg-type]


def test_unknown_name_lists_known_names_of_that_kind(registry: Registry) -> None:
    with pytest.raises(UnknownTransportError) as caught:
        registry.get("nope", "model_transport")
    message = str(caught.value)
    assert "unknown model transport 'nope'" in message
    assert "known model transports: alpha, zeta" in message
    assert "phone" not in message
    assert isinstance(caught.value, LookupError)


def test_unknown_name_of_the_other_kind_says_so(registry: Registry) -> None:
    with pytest.raises(
        UnknownTransportError, match=r"'phone' is a telephony edge: use create_edge"
    ):
        registry.get("phone", "model_transport")
    with pytest.raises(
        UnknownTransportError, match=r"'alpha' is a model transport: use create_transport"
    ):
        registry.get("alpha", "telephony_edge")


def test_unknown_name_in_an_empty_registry_points_at_plugins() -> None:
    with pytest.raises(UnknownTransportError, match="no telephony edges are registered"):
        Registry().get("twilio", "telephony_edge")


def test_registering_as_withdraws_entries_when_the_block_raises(registry: Registry) -> None:
    def flaky_plugin() -> None:
        with registry.registering_as("flaky"):
            registry.add_model_transport("flaky_one", EchoTransport)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        flaky_plugin()
    assert "flaky_one" not in registry
    assert registry.names() == ("alpha", "phone", "zeta")
    # Attribution ends with the block.
    registry.add_model_transport("after", EchoTransport)
    assert registry.get("after").plugin is None


def test_registering_as_does_not_nest() -> None:
    registry = Registry()
    with (
        registry.registering_as("outer"),
        pytest.raises(PluginError, match="still registering"),
        registry.registering_as("inner"),
    ):
        pass  # pragma: no cover - the inner block never runs


def test_remove_plugin(registry: Registry) -> None:
    registry.remove_plugin("models")
    assert registry.available() == {"phone": "telephony_edge"}


# -- the manager's factories -------------------------------------------------------------------


def test_factory_that_returns_no_transport_is_a_plugin_error() -> None:
    class Bad:
        @hookimpl
        def voicewire_register_transports(self, registry: Registry) -> None:
            # The factory lies about its type: the manager must notice at run time.
            registry.add_model_transport("bad", lambda **options: object())  # type: ignore[arg-type]

    pm = PluginManager(disabled=())
    pm.register(Bad(), "bad_plugin")
    with pytest.raises(PluginError, match=r"'bad'.*'bad_plugin'.*not a RealtimeTransportLayer"):
        pm.create_transport("bad")


def test_options_reach_the_factory() -> None:
    calls: list[dict[str, object]] = []

    def factory(**options: object) -> LoopbackEdge:
        calls.append(options)
        return LoopbackEdge()

    class Plugin:
        @hookimpl
        def voicewire_register_transports(self, registry: Registry) -> None:
            registry.add_telephony_edge("recorded", factory)

    pm = PluginManager(disabled=())
    pm.register(Plugin(), "plugin")
    # "name" is free for the factory: the registry name is positional-only.
    pm.create_edge("recorded", name="caller", port=5)
    assert calls == [{"name": "caller", "port": 5}]


# -- module functions over the process-wide registry -----------------------------------------


def test_available_transports_lists_both_kinds(global_manager: PluginManager) -> None:
    available = available_transports()
    assert available["test_echo"] == "model_transport"
    assert available["test_edge"] == "telephony_edge"
    assert get_registry() is global_manager.registry


def test_create_transport_builds_a_realtime_transport(global_manager: PluginManager) -> None:
    transport = create_transport("test_echo", label="custom")
    assert isinstance(transport, RealtimeTransportLayer)
    assert isinstance(transport, EchoTransport)
    assert transport.label == "custom"
    assert good_plugin.created == [transport]


def test_create_edge_builds_an_edge(global_manager: PluginManager) -> None:
    edge = create_edge("test_edge", provider="acme")
    assert isinstance(edge, LoopbackEdge)
    assert edge.provider == "acme"
    assert good_plugin.created == [edge]


def test_create_with_the_wrong_kind_points_at_the_right_function(
    global_manager: PluginManager,
) -> None:
    with pytest.raises(UnknownTransportError, match=r"use create_edge\('test_edge'\)"):
        create_transport("test_edge")
    with pytest.raises(UnknownTransportError, match=r"use create_transport\('test_echo'\)"):
        create_edge("test_echo")
    assert good_plugin.created == []


def test_create_unknown_lists_known_names(global_manager: PluginManager) -> None:
    with pytest.raises(UnknownTransportError, match=r"known model transports: .*test_echo"):
        create_transport("no_such_transport")


def test_create_transport_for_a_failed_plugin_says_it_failed(
    global_manager: PluginManager,
) -> None:
    with pytest.raises(
        UnknownTransportError, match=r"plugin 'vw_test_broken' is failed \(import failed"
    ):
        create_transport("vw_test_broken")


async def test_echo_transport_echoes_audio_as_audio_events(global_manager: PluginManager) -> None:
    transport = create_transport("test_echo", plugin_observers=False)
    received: list[object] = []
    transport.on("audio", received.append)
    changes: list[object] = []
    transport.on("connection_change", changes.append)
    await transport.connect(ConnectOptions())
    stream = transport.events("audio")
    await transport.send_audio(b"\x01\x02", commit=True)
    first = await anext_event(stream)
    await transport.close()
    assert isinstance(first, AudioEvent)
    assert first.data == b"\x01\x02"
    assert received == [first]
    assert [c.status for c in changes if isinstance(c, ConnectionChangeEvent)] == [
        "connecting",
        "connected",
        "disconnecting",
        "disconnected",
    ]


async def anext_event(stream: object) -> object:
    # anext() is a builtin only from Python 3.10 on and typed loosely; spelled out for clarity.
    iterator = stream.__aiter__()  # type: ignore[attr-defined]
    return await iterator.__anext__()
