"""Print pip's effective index settings as shell `export UV_...` lines, so uv installs from where pip would.

Exit status 3: pip is configured in a way this script does not translate (use pip).

uv reads none of pip's configuration (pip.conf files, PIP_* variables). venv_install.sh installs
with uv for speed and falls back to pip, so both must see the same indexes, local wheel folders,
constraints and CA bundle. Reads `pip config list` (files already merged; `:env:` rows are PIP_*
variables, which win, then the `install` section, then `global`).
"""
from __future__ import annotations

import importlib.util
import shlex
import subprocess
import sys

# pip setting -> (uv variable, separator uv expects between several values)
PIP_TO_UV = {
    "index-url": ("UV_INDEX_URL", " "),
    "extra-index-url": ("UV_EXTRA_INDEX_URL", " "),
    "find-links": ("UV_FIND_LINKS", ","),
    "constraint": ("UV_CONSTRAINT", " "),
    "cert": ("SSL_CERT_FILE", " "),
    "trusted-host": ("UV_INSECURE_HOST", " "),
    "proxy": ("HTTPS_PROXY", " "),
}
# Settings that change which files pip picks and that this script does not translate: with any of
# them set, venv_install.sh installs with pip itself.
UNTRANSLATED = {"no-index", "no-binary", "only-binary", "prefer-binary", "pre", "require-hashes", "no-build-isolation"}
SECTION_RANK = {":env:": 0, "install": 1, "global": 2}


def pip_settings(listing: str) -> dict[str, str]:
    """`pip config list` output -> {setting: value} as pip applies it to `pip install`."""
    best: dict[str, tuple[int, str]] = {}
    for line in listing.splitlines():
        key, sep, quoted = line.partition("=")
        section, dot, name = key.rpartition(".")
        if not sep or not dot or section not in SECTION_RANK:
            continue
        value = shlex.split(quoted)[0] if quoted.strip() else ""
        rank = SECTION_RANK[section]
        if name not in best or rank < best[name][0]:
            best[name] = (rank, value)
    return {name: value for name, (_, value) in best.items()}


def uv_exports(settings: dict[str, str]) -> list[str] | None:
    """The exports that make uv choose as pip would; None when a setting has no translation here."""
    if any(settings.get(name, "").strip() for name in UNTRANSLATED):
        return None
    lines = ["export UV_INDEX_STRATEGY=unsafe-best-match"]  # pip picks the best version across all indexes
    for name, (variable, separator) in PIP_TO_UV.items():
        value = settings.get(name, "").strip()
        if not value:
            continue
        lines.append(f"export {variable}={shlex.quote(separator.join(value.split()))}")
    return lines


def pip_command() -> list[str]:
    """pip as this interpreter runs it. setup.sh makes the venv without pip, so its first install
    asks the base interpreter's pip, pointed at the venv (`--python`: the venv's view of the config)."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    return [sys._base_executable, "-m", "pip", "--python", sys.executable]


def main() -> None:
    listing = subprocess.run([*pip_command(), "config", "list"], capture_output=True, text=True, check=True).stdout
    exports = uv_exports(pip_settings(listing))
    if exports is None:
        sys.exit(3)
    print("\n".join(exports))


if __name__ == "__main__":
    main()
