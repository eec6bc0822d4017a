"""The embedded model's conversion with one shared GGUF parse writes what transformers' own path writes."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mosaic_it.models.embedded import write_converted

TEXTS = [
    "",
    "Hello, world!",
    "  leading and trailing spaces  ",
    "tabs\tand\nnewlines\r\n\n\nthree",
    "Ünïcödé — naïve café, 東京, Здравствуйте, مرحبا, emoji 🙂🚀",
    "def f(x):\n    return x ** 2  # squares\n",
    "Numbers 1234567890 3.14159 1e-9 and 10,000,000",
    "<|im_start|>user\nList three colours.<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|> between <|im_end|> special tokens",
    "a" * 300,
]


def sha256s(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.slow
def test_shared_parse_writes_the_same_files_as_transformers_path(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    shared, plain = tmp_path / "shared", tmp_path / "plain"
    shared.mkdir()
    plain.mkdir()
    write_converted(shared, with_weights=True, parse_once=True)
    write_converted(plain, with_weights=True, parse_once=False)

    files = sha256s(plain)
    assert {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"} <= set(files)
    assert sha256s(shared) == files

    ours, theirs = AutoTokenizer.from_pretrained(shared), AutoTokenizer.from_pretrained(plain)
    assert len(ours) == len(theirs) == 49152
    for text in TEXTS:
        ids = theirs(text)["input_ids"]
        assert ours(text)["input_ids"] == ids
        assert ours.decode(ids) == theirs.decode(ids)
    chat = [{"role": "user", "content": "Name a prime."}]
    assert ours.apply_chat_template(chat, tokenize=False) == theirs.apply_chat_template(chat, tokenize=False)


def test_the_shared_parse_is_undone_after_use() -> None:
    import gguf

    from mosaic_it.models.gguf_once import parse_gguf_once

    reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    with pytest.raises(RuntimeError):
        with parse_gguf_once():
            assert gguf.GGUFReader is not reader
            first = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2)
            assert gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2) is first
            raise RuntimeError("a conversion failed")
    assert gguf.GGUFReader is reader and gguf.get_tensor_name_map is name_map
