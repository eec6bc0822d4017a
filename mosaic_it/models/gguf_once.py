"""Converting a GGUF file through transformers without parsing it three times.

transformers' GGUF path builds a fresh `gguf.GGUFReader` for the tokenizer, again for the config
and again for the weights; each parses the ~100k vocabulary and merge strings through a numpy
memmap, one small slice at a time (~4.5 s a parse for SmolLM2-135M on this project's 2-core
machine). Mapping the tensor names then rebuilds the same `gguf.TensorNameMap` once per submodule
(~400 times). Inside `parse_gguf_once()` both are computed once and shared, and the reader slices
a plain ndarray view of the same mapping (memmap's per-slice Python hooks are most of a parse).
transformers' code runs unchanged on the same bytes, so its output is the same
(tests/test_embedded_convert.py compares weights' sha256 and encodings with the unpatched path).
"""
from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def parse_gguf_once() -> Iterator[None]:
    import gguf
    import numpy as np

    class PlainArrayReader(gguf.GGUFReader):
        def _get(self, offset: int, dtype: Any, count: int = 1, override_order: Any = None) -> Any:
            if type(self.data) is not np.ndarray:
                self.data = self.data.view(np.ndarray)  # same bytes, still memory-mapped
            return super()._get(offset, dtype, count, override_order)

    readers: dict[tuple[str, str], gguf.GGUFReader] = {}

    def shared_reader(path: os.PathLike[str] | str, mode: str = "r") -> gguf.GGUFReader:
        key = (os.path.realpath(path), mode)
        if key not in readers:
            readers[key] = PlainArrayReader(path, mode)  # type: ignore[arg-type]
        return readers[key]

    saved = gguf.GGUFReader, gguf.get_tensor_name_map
    gguf.GGUFReader = shared_reader  # type: ignore[assignment,misc]
    gguf.get_tensor_name_map = functools.lru_cache(maxsize=None)(saved[1])
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = saved
        readers.clear()
