"""Plugin ``vw_test_blocked``: a working plugin that the tests block with VOICEWIRE_DISABLE_PLUGINS."""

from __future__ import annotations

from voicewire.hookspecs import hookimpl
from voicewire.registry import Registry
from voicewire_testplugins.transport import EchoTransport


@hookimpl
def voicewire_register_transports(registry: Registry) -> None:
    """Register ``test_blocked_echo``, which exists only while this plugin is not blocked."""
    registry.add_model_transport(
        "test_blocked_echo", EchoTransport, description="echo transport of a blockable plugin"
    )
