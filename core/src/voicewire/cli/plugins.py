"""``voicewire plugins``: list every discovered plugin and what it provides."""

from __future__ import annotations

import argparse
import json

from voicewire.cli.base import CliCommand
from voicewire.plugins import PluginInfo, get_plugin_manager
from voicewire.registry import TransportKind

__all__ = ["COMMAND"]

_SHORT_KIND: dict[TransportKind, str] = {"model_transport": "model", "telephony_edge": "edge"}


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="print a JSON array (one object per plugin) instead of a table",
    )


def _as_dict(info: PluginInfo, kinds: dict[str, TransportKind]) -> dict[str, object]:
    return {
        "id": info.id,
        "status": info.status,
        "distribution": info.distribution,
        "version": info.version,
        "entry_point": info.entry_point,
        "transports": {name: kinds[name] for name in info.transports},
        "hooks": list(info.hooks),
        "reason": info.reason,
    }


def _table(infos: list[PluginInfo], kinds: dict[str, TransportKind]) -> str:
    header = ("ID", "STATUS", "DISTRIBUTION", "VERSION", "TRANSPORTS", "HOOKS")
    rows = [
        (
            info.id,
            info.status,
            info.distribution or "-",
            info.version or "-",
            ", ".join(f"{name} ({_SHORT_KIND[kinds[name]]})" for name in info.transports) or "-",
            ", ".join(hook.removeprefix("voicewire_") for hook in info.hooks) or "-",
        )
        for info in infos
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row, info in zip([header, *rows], [None, *infos], strict=True):
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
        if info is not None and info.reason:
            lines.append(f"    reason: {info.reason}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the plugin table (or JSON with ``--json``)."""
    manager = get_plugin_manager()
    infos = manager.plugin_infos()
    kinds = manager.available_transports()
    if args.json:
        print(json.dumps([_as_dict(info, kinds) for info in infos], indent=2))
    elif infos:
        print(_table(infos, kinds))
    else:
        print("no voicewire plugins are installed")
    return 0


COMMAND = CliCommand(
    name="plugins",
    help="list discovered plugins: id, distribution, version, transports, hooks, status",
    description=(
        "List every plugin found in the 'voicewire.plugins' entry-point group or registered"
        " in-process: its distribution and version, the transports and edges it registered,"
        " the hooks it implements, and whether it is loaded, blocked or failed (with the reason)."
    ),
    configure=_configure,
    run=run,
)
