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


def test_augment_runs_with_the_collector_off_and_leaves_it_on(tmp_path, sample_data, monkeypatch):
    from mosaic_it.config.augment import AugmentConfig
    from mosaic_it.mosaic import augment

    seen = []
    real = augment.Packer.planned

    def planned(self, *args, **kwargs):
        seen.append(gc.isenabled())
        return real(self, *args, **kwargs)

    monkeypatch.setattr(augment.Packer, "planned", planned)
    gc.enable()
    cfg = AugmentConfig(input=str(sample_data), output=str(tmp_path / "mosaic.jsonl"), stats_dir=str(tmp_path / "stats"),
                        epochs=1, max_tokens=512)
    assert augment.run_augment(cfg, show_progress=False).samples > 0
    assert seen == [False] and gc.isenabled()
