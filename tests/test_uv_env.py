"""scripts/uv_env.py: uv is told what pip is configured with, or not used at all."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("uv_env", ROOT / "scripts" / "uv_env.py")
uv_env = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(uv_env)

LISTING = """\
:env:.find-links='/opt/wheels'
global.cert='/etc/ssl/certs/ca.crt'
global.constraint='/etc/xdg/pip/constraints.txt'
global.extra-index-url='file:///opt/a/simple file:///opt/b/simple'
global.find-links='/somewhere/else'
global.index-url='https://mirror.example/simple'
install.index-url='https://install-mirror.example/simple'
global.timeout='60'
"""


def test_environment_beats_install_section_beats_global() -> None:
    settings = uv_env.pip_settings(LISTING)
    assert settings["find-links"] == "/opt/wheels"
    assert settings["index-url"] == "https://install-mirror.example/simple"
    assert settings["extra-index-url"] == "file:///opt/a/simple file:///opt/b/simple"


def test_exports_carry_indexes_links_constraints_and_certificates() -> None:
    assert uv_env.uv_exports(uv_env.pip_settings(LISTING)) == [
        "export UV_INDEX_STRATEGY=unsafe-best-match",
        "export UV_INDEX_URL=https://install-mirror.example/simple",
        "export UV_EXTRA_INDEX_URL='file:///opt/a/simple file:///opt/b/simple'",
        "export UV_FIND_LINKS=/opt/wheels",
        "export UV_CONSTRAINT=/etc/xdg/pip/constraints.txt",
        "export SSL_CERT_FILE=/etc/ssl/certs/ca.crt",
    ]


def test_several_wheel_folders_are_joined_with_commas() -> None:
    exports = uv_env.uv_exports({"find-links": "/a /b\n/c"})
    assert "export UV_FIND_LINKS=/a,/b,/c" in exports


def test_a_setting_it_cannot_translate_sends_the_install_to_pip() -> None:
    assert uv_env.uv_exports({"no-index": "true", "find-links": "/a"}) is None
    env = {**os.environ, "PIP_NO_INDEX": "1"}
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "uv_env.py")], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 3 and run.stdout == ""


def test_the_printed_lines_are_shell_that_sets_what_they_say(tmp_path: Path) -> None:
    env = {**os.environ, "PIP_FIND_LINKS": "/x /y", "PIP_CONSTRAINT": "/c d.txt"}
    script = f'eval "$({sys.executable} {ROOT / "scripts" / "uv_env.py"})"; echo "$UV_FIND_LINKS|$UV_CONSTRAINT"'
    run = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "/x,/y|/c d.txt"  # two constraint files, as pip reads the value


def test_a_venv_without_pip_reads_the_config_through_its_base_pip(tmp_path: Path) -> None:
    """setup.sh makes .venv without pip: the exports are those the venv's own pip would give."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "v")], check=True)
    bare = tmp_path / "v" / "bin" / "python"
    assert subprocess.run([str(bare), "-c", "import pip"], capture_output=True).returncode != 0
    script = str(ROOT / "scripts" / "uv_env.py")
    with_pip = subprocess.run([sys.executable, script], capture_output=True, text=True)
    without = subprocess.run([str(bare), script], capture_output=True, text=True)
    assert (without.returncode, without.stdout) == (with_pip.returncode, with_pip.stdout)
    assert without.returncode in (0, 3) and not without.stderr.strip().startswith("Traceback")
