"""The three distributions agree on their version and ship their type marker."""

from __future__ import annotations

import importlib
from importlib import metadata
from pathlib import Path

import pytest

import voicewire


@pytest.mark.parametrize(
    ("distribution", "package"),
    [
        ("voicewire", "voicewire"),
        ("voicewire-openai-ws", "voicewire_openai_ws"),
        ("voicewire-twilio", "voicewire_twilio"),
    ],
)
def test_distribution_metadata_matches_package(distribution: str, package: str) -> None:
    module = importlib.import_module(package)
    assert module.__version__ == metadata.version(distribution)
    assert module.__file__ is not None
    assert (Path(module.__file__).parent / "py.typed").is_file()


def test_core_version_is_exported() -> None:
    assert voicewire.__version__ == metadata.version("voicewire")
