"""Every asynchronous end-to-end test fails if it leaves an asyncio task running."""

from __future__ import annotations

import inspect

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        function = getattr(item, "function", None)
        if "/tests/e2e/" in str(item.path) and inspect.iscoroutinefunction(function):
            item.add_marker(pytest.mark.usefixtures("no_task_leaks"))
