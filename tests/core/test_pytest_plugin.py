"""The opt-in pytest plugin ``voicewire.testing.pytest_plugin``, run in a pytest of its own.

Each test writes a small test suite that opts into the plugin the way a plugin author would and
runs it in a subprocess (a fresh interpreter and event loop), then reads the outcomes.
"""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

CONFTEST = 'pytest_plugins = ["voicewire.testing.pytest_plugin"]\n'

FIXTURES = textwrap.dedent(
    """
    import asyncio

    import pytest
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    import voicewire
    from voicewire.hookspecs import hookimpl
    from voicewire.testing import RefuseConnection


    async def first_event(url: str, **options) -> str:
        async with connect(url, proxy=None, **options) as ws:
            return str(await ws.recv())


    @pytest.mark.asyncio
    async def test_server(no_task_leaks, fake_realtime_server):
        assert fake_realtime_server.url.startswith("ws://127.0.0.1:")
        assert '"session.created"' in await first_event(fake_realtime_server.url)
        await fake_realtime_server.wait_closed(0)


    @pytest.mark.asyncio
    @pytest.mark.voicewire_fake_server(api_key="sk-inner")
    async def test_server_options(fake_realtime_server):
        with pytest.raises(InvalidStatus):
            await first_event(fake_realtime_server.url)
        headers = {"Authorization": "Bearer sk-inner"}
        assert "session.created" in await first_event(
            fake_realtime_server.url, additional_headers=headers
        )


    @pytest.mark.asyncio
    async def test_factory(no_task_leaks, fake_realtime_factory):
        echo = await fake_realtime_factory(pace=0)
        refusing = await fake_realtime_factory(faults=[RefuseConnection(status=503)])
        assert echo.url != refusing.url
        with pytest.raises(InvalidStatus):
            await first_event(refusing.url)
        assert refusing.session(0).http_status == 503


    @pytest.mark.asyncio
    async def test_leaks_a_task(no_task_leaks):
        asyncio.get_running_loop().create_task(asyncio.Event().wait(), name="left-behind")


    def make_edge(**options):
        return ("inner edge", options)


    class InnerPlugin:
        @hookimpl
        def voicewire_register_transports(self, registry):
            registry.add_telephony_edge("inner_edge", make_edge)


    @pytest.mark.voicewire_plugins(("inner", InnerPlugin()))
    def test_plugin_manager(voicewire_plugin_manager):
        assert voicewire_plugin_manager.has_plugin("inner")
        # Process-wide for the test: the module functions see the in-process plugin.
        assert voicewire.available_transports() == {"inner_edge": "telephony_edge"}
        assert voicewire.create_edge("inner_edge", x=1) == ("inner edge", {"x": 1})


    def test_plugin_manager_is_restored():
        assert "inner_edge" not in voicewire.available_transports()
    """
)


def test_the_fixtures_work_in_strict_mode(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_inner=FIXTURES)
    result = pytester.runpytest_subprocess("--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6, errors=1)
    # The one error is the leak check failing the test that left a task behind.
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_leaks_a_task*"])
    result.stdout.fnmatch_lines(["*1 asyncio task(s) left running*left-behind*"])


def test_the_plugin_can_be_enabled_on_the_command_line(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(
        test_inner="""
        async def test_server(no_task_leaks, fake_realtime_server):
            assert fake_realtime_server.sessions == ()
        """
    )
    result = pytester.runpytest_subprocess("-p", "voicewire.testing.pytest_plugin")
    result.assert_outcomes(passed=1)


def test_the_plugin_is_not_loaded_without_opting_in(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(
        test_inner="""
        async def test_server(fake_realtime_server):
            pass
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'fake_realtime_server' not found*"])


def test_the_leak_grace_is_configurable(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
        "voicewire_task_leak_grace = 5\n"
    )
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_inner="""
        import asyncio

        async def test_a_task_that_finishes_soon_is_no_leak(no_task_leaks):
            asyncio.get_running_loop().create_task(asyncio.sleep(0.05))
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
