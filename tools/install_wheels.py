"""Build every voicewire distribution as a wheel and install it into the running interpreter.

tox calls this before each test run so that the suite exercises the wheels a user would install,
not the source tree: a file missing from a wheel, or an entry point that is not declared, fails
here the same way it would fail for a user. The wheels are rebuilt on every run, because a cached
wheel of an unchanged version number would hide source changes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTIONS = [
    ROOT / "core",
    ROOT / "plugins" / "openai_ws",
    ROOT / "plugins" / "twilio",
]
TEST_DISTRIBUTIONS = [
    ROOT / "tests" / "plugins" / "voicewire_testplugins",
    ROOT / "examples" / "jsonl_call_log",
    ROOT / "examples" / "acme_telephony",
    ROOT / "examples" / "voicewire-telnyx",
]


def build(sources: list[Path], outdir: Path) -> list[Path]:
    for source in sources:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "build",
                "--wheel",
                "--no-isolation",
                "--outdir",
                str(outdir),
                str(source),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return sorted(outdir.glob("*.whl"))


def install(wheels: list[Path]) -> None:
    uv = shutil.which("uv")
    if uv:
        base = [uv, "pip", "install", "--python", sys.executable, "--quiet"]
    else:
        base = [sys.executable, "-m", "pip", "install", "--quiet"]
    names = [str(w) for w in wheels]
    # First pass brings in dependencies; the second replaces our own packages even when the
    # version number did not change (a plain install would keep the stale copy).
    subprocess.run([*base, *names], check=True)
    subprocess.run(
        [*base, "--reinstall" if uv else "--force-reinstall", "--no-deps", *names], check=True
    )


def main() -> int:
    with_tests = "--no-test-plugins" not in sys.argv[1:]
    sources = DISTRIBUTIONS + (TEST_DISTRIBUTIONS if with_tests else [])
    with tempfile.TemporaryDirectory(prefix="voicewire-wheels-") as tmp:
        wheels = build([s for s in sources if s.exists()], Path(tmp))
        install(wheels)
    print(f"installed {len(wheels)} wheels: {', '.join(w.name for w in wheels)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
