"""``python -m voicewire``: the same as the ``voicewire`` command."""

from __future__ import annotations

from voicewire.cli import main

raise SystemExit(main())
