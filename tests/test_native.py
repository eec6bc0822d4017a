"""The mypyc-compiled modules (mosaic_it/mosaic/native.py): the same bytes as their sources, and
never run in place of a source edited since they were compiled."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from mosaic_it.mosaic import native

CLI = [str(Path(sys.executable).parent / "mosaic-it")]
SETTINGS = [
    ["--epochs", "3", "--wrap-mode", "uniform", "--max-instructions", "10", "--max-tokens", "2000", "--strategy", "both"],
    ["--epochs", "2", "--wrap-mode", "pareto", "--max-instructions", "6", "--max-tokens", "512", "--strategy", "order"],
    ["--epochs", "2", "--wrap-mode", "max_length", "--max-instructions", "6", "--max-tokens", "300", "--strategy", "mask"],
]


def _compiled_install() -> bool:
    return (native.FOLDER / native.MANIFEST).is_file()


def _run_python(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_install_compiled_where_a_compiler_was_at_hand() -> None:
    """A compiled module that stops type-checking makes the build install the pure modules (so an
    install never fails for it): this is what notices."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if not (shutil.which(compiler) and Path(sysconfig.get_paths()["include"], "Python.h").is_file()):
        pytest.skip(f"no C compiler ({compiler}) or Python headers here: the install is pure Python by design")
    if os.environ.get(native.PURE_VARIABLE):
        pytest.skip(f"{native.PURE_VARIABLE} is set")
    assert _compiled_install() and native.stale() == [] and native.compiled()


@pytest.fixture(scope="module")
def source(tmp_path_factory, sample_data) -> Path:
    path = tmp_path_factory.mktemp("native") / "train.json"
    path.write_text(json.dumps(json.loads(sample_data.read_text(encoding="utf-8"))[:1500]), encoding="utf-8")
    return path


@pytest.mark.parametrize("setting", SETTINGS, ids=["uniform-both", "pareto-order", "max_length-mask"])
def test_compiled_and_pure_modules_write_the_same_bytes(tmp_path, source, repo_root, setting) -> None:
    if not _compiled_install():
        pytest.skip("this install runs the pure modules (nothing was compiled): nothing to compare")
    written = {}
    for mode, pure in (("compiled", ""), ("pure", "1")):
        env = {**os.environ, native.PURE_VARIABLE: pure}
        check = _run_python("from mosaic_it.mosaic import native; print(native.compiled())", env, repo_root)
        assert check.stdout.strip() == str(not pure), check.stderr
        out = tmp_path / mode
        run = subprocess.run([*CLI, "augment", str(source), *setting, "--seed", "7", "--output", str(out / "m.jsonl"),
                              "--stats-dir", str(out / "stats")], cwd=repo_root, env=env, capture_output=True,
                             text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        written[mode] = [(out / "m.jsonl").read_bytes(), (out / "stats" / "stats.json").read_bytes()]
    assert written["compiled"][0].count(b"\n") > 100
    assert written["compiled"] == written["pure"]


def test_stale_names_the_sources_changed_since_the_build(tmp_path) -> None:
    for name in native.COMPILED:
        shutil.copy(native.FOLDER / native.source_path(name).name, tmp_path)
    assert native.stale(tmp_path) == []  # no manifest: nothing was compiled
    import hashlib

    digests = {name: hashlib.sha256((tmp_path / native.source_path(name).name).read_bytes()).hexdigest()
               for name in native.COMPILED}
    (tmp_path / native.MANIFEST).write_text(json.dumps({"sha256": digests}), encoding="utf-8")
    assert native.stale(tmp_path) == []
    with (tmp_path / "joined.py").open("a", encoding="utf-8") as handle:
        handle.write("# edited\n")
    assert native.stale(tmp_path) == ["mosaic_it.mosaic.joined"]
    (tmp_path / native.MANIFEST).write_text("{not json", encoding="utf-8")
    assert native.stale(tmp_path) == list(native.COMPILED)


def test_an_edited_source_runs_instead_of_its_stale_extension(tmp_path) -> None:
    """A copy of the installed package, its compiled group included: as built, the extensions
    load; once one source is edited, every compiled module loads from its source, with one line
    saying why."""
    if not _compiled_install():
        pytest.skip("this install runs the pure modules (nothing was compiled): no extension to go stale")
    [group] = native.FOLDER.parent.parent.glob("mosaic_it__mypyc.*.so")  # beside the package
    shutil.copytree(native.FOLDER.parent, tmp_path / "mosaic_it", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(group, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop(native.PURE_VARIABLE, None)
    code = ("from mosaic_it.mosaic import engine, joined, native; "
            "print(native.FOLDER == __import__('pathlib').Path(r'%s'), joined.__file__.endswith('.py'), "
            "engine.__file__.endswith('.py'))" % (tmp_path / "mosaic_it" / "mosaic"))
    fresh = _run_python(code, env, tmp_path)
    assert (fresh.returncode, fresh.stdout.split(), fresh.stderr) == (0, ["True", "False", "False"], "")
    with (tmp_path / "mosaic_it" / "mosaic" / "layout.py").open("a", encoding="utf-8") as handle:
        handle.write("# edited\n")
    edited = _run_python(code, env, tmp_path)
    assert (edited.returncode, edited.stdout.split()) == (0, ["True", "True", "True"])
    assert edited.stderr.splitlines() == [
        "mosaic-it: mosaic_it/mosaic/layout.py changed since it was compiled; running the Python sources "
        "(slower) until `bash scripts/setup.sh` compiles them again"]
