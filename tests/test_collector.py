"""Pausing the cyclic garbage collector leaves it as it found it, whatever happens inside."""
from __future__ import annotations

import gc

import pytest

from mosaic_it import collector


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_off_inside_and_as_it_was_after(enabled):
    (gc.enable if enabled else gc.disable)()
    try:
        with collector.paused():
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
        with pytest.raises(KeyError), collector.paused():
            raise KeyError("inside")
        assert gc.isenabled() is enabled
    finally:
        gc.enable()


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_what_was_built_inside_is_not_walked_by_the_next_young_collection_but_still_freed():
    gc.collect()
    gc.enable()
    with collector.paused():
        kept = [[index] for index in range(200_000)]
        _Cycle()  # unreachable once built: only a collection frees it
    # Walked at once, the 200,000 lists would be in the young generation's count until then.
    assert gc.get_count()[0] < 1_000 and gc.get_freeze_count() == 0
    assert all(gc.is_tracked(item) for item in kept[:3])
    assert gc.collect() >= 1  # the cycle built inside is freed by a full collection


@pytest.mark.parametrize("frozen_inside", [False, True])
def test_objects_others_froze_stay_frozen(frozen_inside):
    frozen = [[index] for index in range(10)]
    gc.enable()
    try:
        if not frozen_inside:
            gc.freeze()
        with collector.paused():
            if frozen_inside:
                gc.freeze()
            before = gc.get_freeze_count()
        assert gc.get_freeze_count() > before // 2 > 0  # not released (a few frozen objects may have been freed)
    finally:
        gc.unfreeze()
    assert frozen


def test_augment_runs_with_the_collector_off_and_leaves_it_on(tmp_path, sample_data, monkeypatch):
    from mosaic_it.config.augment import AugmentConfig
    from mosaic_it.mosaic import augment

    seen = []
    real = augment.load_counting_tokenizer

    def load_counting_tokenizer(*args, **kwargs):  # called inside the paused block, before packing
        seen.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(augment, "load_counting_tokenizer", load_counting_tokenizer)
    gc.enable()
    cfg = AugmentConfig(input=str(sample_data), output=str(tmp_path / "mosaic.jsonl"), stats_dir=str(tmp_path / "stats"),
                        epochs=1, max_tokens=512)
    assert augment.run_augment(cfg, show_progress=False).samples > 0
    assert seen == [False] and gc.isenabled()
