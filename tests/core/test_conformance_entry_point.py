"""``check_entry_point`` over the real entry points of the installed distributions."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution

import pytest

from voicewire.testing.conformance import ConformanceError, check_entry_point


def installed(name: str) -> bool:
    try:
        distribution(name)
    except PackageNotFoundError:
        return False
    return True


needs_test_plugins = pytest.mark.skipif(
    not installed("voicewire-testplugins"),
    reason="the test plugins are installed as a wheel by tools/install_wheels.py",
)


def test_the_plugins_of_this_repository_pass() -> None:
    spec = check_entry_point("openai_ws", "openai_ws", "model_transport")
    assert (spec.name, spec.kind, spec.plugin) == ("openai_ws", "model_transport", "openai_ws")
    assert check_entry_point("twilio", "twilio", "telephony_edge").plugin == "twilio"


def test_the_plugin_is_checked_even_when_blocked_by_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The check is about the distribution, not about this process's configuration.
    monkeypatch.setenv("VOICEWIRE_DISABLE_PLUGINS", "openai_ws")
    assert check_entry_point("openai_ws", "openai_ws", "model_transport").plugin == "openai_ws"


def test_a_missing_entry_point_is_named() -> None:
    with pytest.raises(ConformanceError) as caught:
        check_entry_point("no_such_plugin", "no_such", "telephony_edge")
    assert caught.value.step == "entry point"
    assert "no entry point 'no_such_plugin'" in caught.value.detail
    assert "openai_ws" in caught.value.detail  # what is declared instead


def test_the_wrong_kind_is_named() -> None:
    with pytest.raises(ConformanceError, match="registered as a model_transport, not a telephony"):
        check_entry_point("openai_ws", "openai_ws", "telephony_edge")


def test_a_name_of_another_plugin_is_named() -> None:
    with pytest.raises(ConformanceError, match="registered by 'twilio', not 'openai_ws'"):
        check_entry_point("openai_ws", "twilio", "telephony_edge")


def test_a_name_the_plugin_does_not_register_is_named() -> None:
    with pytest.raises(ConformanceError) as caught:
        check_entry_point("openai_ws", "openai_rtc", "model_transport")
    assert caught.value.step == "register"


def test_the_factory_can_be_called_through_the_registry() -> None:
    check_entry_point(
        "openai_ws", "openai_ws", "model_transport", create_options={"plugin_observers": False}
    )
    with pytest.raises(ConformanceError) as caught:
        check_entry_point(
            "openai_ws", "openai_ws", "model_transport", create_options={"no_such_option": 1}
        )
    assert caught.value.step == "create"
    assert "TypeError" in caught.value.detail


@needs_test_plugins
def test_a_plugin_that_fails_to_import_is_reported_with_its_reason() -> None:
    with pytest.raises(ConformanceError) as caught:
        check_entry_point("vw_test_broken", "anything", "model_transport")
    assert caught.value.step == "load"
    assert "import failed" in caught.value.detail


@needs_test_plugins
def test_an_edge_factory_returning_something_else_is_reported() -> None:
    # The test plugin's edge records commands but is no TelephonyEdge (no events()).
    with pytest.raises(ConformanceError, match="not a TelephonyEdge"):
        check_entry_point("vw_test_good", "test_edge", "telephony_edge", create_options={})
