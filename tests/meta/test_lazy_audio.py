"""A pass-through bridge never loads numpy or soxr: they are most of a bridge process's memory."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import voicewire
import voicewire_openai_ws
import voicewire_twilio.server
from voicewire.audio import MULAW_8K, AudioConverter
assert AudioConverter(MULAW_8K, MULAW_8K).convert(b"\\xff" * 160) == b"\\xff" * 160
loaded = sorted(name for name in ("numpy", "soxr") if name in sys.modules)
print(",".join(loaded))
from voicewire.audio import mulaw_encode  # first use loads the codecs
assert mulaw_encode(b"\\x00\\x00") == b"\\xff"
assert "numpy" in sys.modules
"""


def test_pass_through_imports_no_numpy_and_the_codecs_load_on_first_use() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
