"""Every public name of the three distributions is documented in ``docs/``.

The public names are the ``__all__`` of every package (``voicewire``, ``voicewire.bridge``,
``voicewire.testing``, ``voicewire_twilio.protocol``, ...) and of every module the API reference
renders with a ``::: module`` directive. The command line's internals (``voicewire.cli``,
``voicewire.demo``) are public through their commands, which ``test_cli_documented`` checks.

A name is documented when the page text names it in inline code (alone, qualified, or inside a
longer span such as a call), or when the API reference renders it: a class or function with
a docstring whose home module (or which itself) has a ``:::`` directive, or a constant or type
alias with an attribute docstring (a string right after its assignment, as mkdocstrings reads
them) in a module that has one.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from types import GenericAlias, ModuleType

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
DISTRIBUTIONS = ("voicewire", "voicewire_twilio", "voicewire_openai_ws")
THROUGH_THE_CLI = ("voicewire.cli", "voicewire.demo")


def _pages() -> str:
    return "\n".join(page.read_text(encoding="utf-8") for page in sorted(DOCS.rglob("*.md")))


PAGES = _pages()
DIRECTIVES = frozenset(re.findall(r"^::: ([\w.]+)", PAGES, re.M))
# Inline code only (a span may wrap onto the next line): a name that only appears in an example
# is used, not documented.
CODE = " ".join(
    re.findall(r"`([^`]+)`", re.sub(r"^[ \t]*```.*?^[ \t]*```", "", PAGES, flags=re.M | re.S))
)


def _directive_modules() -> list[ModuleType]:
    modules = []
    for directive in sorted(DIRECTIVES):
        try:
            modules.append(importlib.import_module(directive))
        except ImportError:
            continue  # a directive for a class or function, not a module
    return modules


RENDERED_MODULES = _directive_modules()


def _public_modules() -> list[str]:
    names = {module.__name__ for module in RENDERED_MODULES}
    for top in DISTRIBUTIONS:
        names.add(top)
        package = importlib.import_module(top)
        for info in pkgutil.walk_packages(package.__path__, top + "."):
            private = any(part.startswith("_") for part in info.name.split("."))
            if info.ispkg and not private and not info.name.startswith(THROUGH_THE_CLI):
                names.add(info.name)
    return sorted(names)


def _attribute_docstrings(module: ModuleType) -> frozenset[str]:
    """Module-level names assigned with a docstring right after them."""
    tree = ast.parse(inspect.getsource(module))
    found = set()
    for statement, following in zip(tree.body, tree.body[1:], strict=False):
        documented = (
            isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        )
        if not documented:
            continue
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            found.add(statement.target.id)
        elif isinstance(statement, ast.Assign):
            found.update(t.id for t in statement.targets if isinstance(t, ast.Name))
    return frozenset(found)


def _all_modules() -> list[ModuleType]:
    modules = []
    for top in DISTRIBUTIONS:
        package = importlib.import_module(top)
        modules.append(package)
        for info in pkgutil.walk_packages(package.__path__, top + "."):
            if not info.name.endswith(".__main__"):  # importing one runs the command
                modules.append(importlib.import_module(info.name))
    return modules


def _documented_values() -> dict[str, list[object]]:
    """Name -> the values assigned to it with an attribute docstring, anywhere in the code."""
    values: dict[str, list[object]] = {}
    for module in _all_modules():
        for name in _attribute_docstrings(module):
            values.setdefault(name, []).append(getattr(module, name, None))
    return values


DOCUMENTED_VALUES = _documented_values()


def _rendered(module: ModuleType, name: str, obj: object) -> bool:
    # Before Python 3.11 a parametrised alias such as Callable[..., X] passes for a class.
    if (inspect.isclass(obj) and not isinstance(obj, GenericAlias)) or inspect.isfunction(obj):
        home = getattr(obj, "__module__", "")
        return bool(inspect.getdoc(obj)) and bool(
            {module.__name__, home, f"{home}.{name}", f"{module.__name__}.{name}"} & DIRECTIVES
        )
    # A constant or type alias: rendered by a directive module that exports it, with the
    # docstring of its assignment (mkdocstrings follows the import to it).
    exported = any(
        name in getattr(where, "__all__", ()) and getattr(where, name, None) is obj
        for where in RENDERED_MODULES
    )
    return exported and any(value is obj for value in DOCUMENTED_VALUES.get(name, ()))


def _named_in_code(name: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", CODE) is not None


@pytest.mark.parametrize("module_name", _public_modules())
def test_every_public_name_is_documented(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = [
        name
        for name in getattr(module, "__all__", ())
        if not _rendered(module, name, getattr(module, name)) and not _named_in_code(name)
    ]
    assert missing == [], f"{module_name}: not documented in docs/: {', '.join(missing)}"
