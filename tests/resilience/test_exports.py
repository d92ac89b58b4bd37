"""The public face of buttress.resilience: __all__ matches what the package exports, and imports stay lean."""

from __future__ import annotations

import subprocess
import sys

import buttress.resilience as resilience


def test_all_matches_exports() -> None:
    for name in resilience.__all__:
        assert hasattr(resilience, name), name
    public = {n for n in dir(resilience) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(resilience, n)).__name__ == "module"}
    assert public - modules == set(resilience.__all__)


def test_importing_the_policies_needs_only_the_standard_library() -> None:
    code = (
        "import sys; before = set(sys.modules)\n"
        "import buttress.resilience, buttress.resilience.dlq\n"
        "roots = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "extra = sorted(r for r in roots if r not in sys.stdlib_module_names and r != 'buttress')\n"
        "print(extra)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
