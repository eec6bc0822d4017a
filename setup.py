"""The build's one extra step: compile augment's hot loops with mypyc where it can.

mypyc turns the typed modules listed in mosaic_it/mosaic/native.py into C extensions: the same
sources, with the same results (tests/test_native.py compares the bytes augment writes both
ways), and less CPU for `mosaic-it augment` (docs/benchmarks.md, run N). Where mypy or a C
compiler is missing, the compilation fails, or MOSAIC_IT_PURE_PYTHON is set, the package installs
as pure Python.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
# The module list and the manifest's name, read without importing the package.
_spec = importlib.util.spec_from_file_location("mosaic_it_native", ROOT / "mosaic_it" / "mosaic" / "native.py")
native = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(native)
MYPY_OPTIONS = ["--ignore-missing-imports", "--follow-imports=skip", "--no-site-packages", "--explicit-package-bases"]


def _fall_back(message: str) -> None:
    """Say why nothing is compiled, and leave nothing compiled behind."""
    print(f"mosaic-it build: {message}; installing the pure Python modules", file=sys.stderr)
    _clear_compiled()


def _clear_compiled() -> None:
    """Remove what an earlier build compiled into the source tree (an editable install's), with
    its manifest: a build that compiles nothing leaves no extension to shadow a source."""
    package = ROOT / "mosaic_it" / "mosaic"
    stale = [package / native.MANIFEST, *ROOT.glob("mosaic_it__mypyc.*.so")]
    for name in native.COMPILED:
        stale += package.glob(name.rpartition(".")[2] + ".*.so")
    for path in stale:
        path.unlink(missing_ok=True)  # a link is removed itself, never what it points to


def _compiled_extensions() -> list:
    if os.environ.get(native.PURE_VARIABLE):
        _clear_compiled()
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        _fall_back("mypyc is not available")
        return []
    sources = [str(native.source_path(name)) for name in native.COMPILED]
    cwd = os.getcwd()
    os.chdir(ROOT)  # mypy finds the package from the current folder (--explicit-package-bases)
    try:
        extensions = mypycify(MYPY_OPTIONS + sources, opt_level="3", group_name="mosaic_it")
    except BaseException as error:  # mypy exits on a type error; a failed compile must not fail the install
        _fall_back(f"mypyc could not compile the modules ({error!r})")
        return []
    finally:
        os.chdir(cwd)
    return extensions


class BuildCompiled(build_ext):
    """build_ext that falls back to the pure modules on any failure, and writes the manifest of
    the sources it compiled (native.py checks it at import, so an edited source is never shadowed
    by its stale extension)."""

    def run(self) -> None:
        if not self.extensions:
            return
        try:
            super().run()
        except Exception as error:  # no compiler, no Python headers: the sources still run
            _fall_back(f"compiling failed ({error})")
            for extension in self.extensions:
                Path(self.get_ext_fullpath(extension.name)).unlink(missing_ok=True)
            return
        manifest = Path(self.get_ext_fullpath(native.COMPILED[0])).parent / native.MANIFEST
        digests = {name: hashlib.sha256((ROOT / native.source_path(name)).read_bytes()).hexdigest()
                   for name in native.COMPILED}
        manifest.write_text(json.dumps({"sha256": digests}, indent=1, sort_keys=True) + "\n", encoding="utf-8")

    def get_outputs(self) -> list[str]:
        outputs = super().get_outputs()
        if self.extensions:
            outputs.append(str(Path(self.get_ext_fullpath(native.COMPILED[0])).parent / native.MANIFEST))
        return outputs


setup(ext_modules=_compiled_extensions(), cmdclass={"build_ext": BuildCompiled})
