"""The package's shape: public exports, stdlib-only core, extras that say what to install."""

import subprocess
import sys
import textwrap
import types

import pytest

import buttress
from buttress._extras import require

# Modules that make up the library core: importing them must pull in nothing outside the standard library.
CORE_MODULES = [
    "buttress",
    "buttress.clock",
    "buttress.config",
    "buttress.errors",
    "buttress.telemetry",
    "buttress.telemetry.sketch",
    "buttress.telemetry.notifier",
]


def test_exports_match_all():
    for name in buttress.__all__:
        assert hasattr(buttress, name), name
    public = {n for n in dir(buttress) if not n.startswith("_")}
    modules = {n for n in public if isinstance(getattr(buttress, n), types.ModuleType)}
    # `cache` is both a public name and a (callable) subpackage.
    assert public - modules == set(buttress.__all__) - {"__version__", "cache"}
    assert callable(buttress.cache)
    assert callable(buttress.policy)


def test_version_is_lazy_metadata():
    assert buttress.__version__ == "0.1.0"


def test_core_imports_only_the_standard_library():
    code = textwrap.dedent(
        f"""
        import sys
        before = set(sys.modules)
        for name in {CORE_MODULES!r}:
            __import__(name)
        third_party = sorted(
            m for m in set(sys.modules) - before
            if m.split('.')[0] not in sys.stdlib_module_names and m.split('.')[0] != 'buttress'
        )
        print(third_party)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_missing_extra_names_it():
    with pytest.raises(ImportError, match=r"pip install 'buttress\[redis\]'"):
        require("definitely_not_installed_module_xyz", "redis")
    assert require("json", "core").__name__ == "json"
