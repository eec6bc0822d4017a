"""Checkpoints are data, never code: weights_only loading, a planted pickle refused, corrupt newest skipped."""
from __future__ import annotations

import os
import pickle
import random

import numpy as np
import pytest
import torch

from mosaic_it.config.train import TrainConfig
from mosaic_it.train.checkpoint import STATE, WEIGHTS, list_checkpoints, load_latest, save_checkpoint
from mosaic_it.train.distributed import DistInfo
from mosaic_it.train.optim import make_optimizer, make_scheduler

SINGLE = DistInfo()


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    cfg = TrainConfig(learning_rate=0.1, warmup_ratio=0.0)
    optimizer = make_optimizer(model, cfg)
    return model, optimizer, make_scheduler(optimizer, cfg, 10)


def _train_step(model, optimizer, scheduler) -> None:
    model(torch.randn(2, 4)).square().sum().backward()
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()


def _save(root, step, model, optimizer, scheduler, keep=3):
    return save_checkpoint(root, step, model, optimizer, scheduler, {"step": step, "losses": [1.5] * step},
                           SINGLE, keep)


def _weights(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


class Planted:
    """Unpickling this would create a folder: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_every_state_round_trips_through_weights_only_files(tmp_path):
    model, optimizer, scheduler = _setup()
    _train_step(model, optimizer, scheduler)
    random.seed(3), np.random.seed(3), torch.manual_seed(3)
    path = _save(tmp_path, 1, model, optimizer, scheduler)
    expected_draws = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    saved = _weights(model)
    for name in (STATE, "rng-0.pt"):  # plain data: the strict loader accepts them
        torch.load(path / name, weights_only=True)

    other, other_opt, other_sched = _setup(seed=1)
    found = load_latest(tmp_path, other, other_opt, other_sched, SINGLE)
    assert found is not None and found[0] == path and found[1] == {"step": 1, "losses": [1.5]}
    assert all(torch.equal(p, saved[n]) for n, p in other.named_parameters())
    assert other_sched.last_epoch == 1 and other_opt.state_dict()["state"][0]["step"] == 1
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected_draws


def test_a_planted_pickle_runs_no_code_and_the_previous_checkpoint_is_used(tmp_path):
    model, optimizer, scheduler = _setup()
    _train_step(model, optimizer, scheduler)
    _save(tmp_path, 1, model, optimizer, scheduler)
    at_step_1 = _weights(model)
    _train_step(model, optimizer, scheduler)
    newest = _save(tmp_path, 2, model, optimizer, scheduler)
    marker = tmp_path / "code-ran"
    state = torch.load(newest / STATE, weights_only=True)
    state["counters"]["payload"] = Planted(str(marker))
    torch.save(state, newest / STATE)  # still a valid torch file, now carrying a pickled callable

    with pytest.warns(UserWarning, match=r"step-2 is unreadable .*trying the previous one"):
        found = load_latest(tmp_path, model, optimizer, scheduler, SINGLE)
    assert not marker.exists()
    assert found is not None and found[0].name == "step-1" and found[1]["step"] == 1
    assert all(torch.equal(p, at_step_1[n]) for n, p in model.named_parameters())


@pytest.mark.parametrize("damage", ["truncated weights", "empty state", "missing state", "foreign pickle"])
def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, damage):
    model, optimizer, scheduler = _setup()
    _train_step(model, optimizer, scheduler)
    _save(tmp_path, 1, model, optimizer, scheduler)
    at_step_1 = _weights(model)
    _train_step(model, optimizer, scheduler)
    newest = _save(tmp_path, 2, model, optimizer, scheduler)
    if damage == "truncated weights":
        data = (newest / WEIGHTS).read_bytes()
        (newest / WEIGHTS).write_bytes(data[: len(data) // 2])
    elif damage == "empty state":
        (newest / STATE).write_bytes(b"")
    elif damage == "missing state":
        (newest / STATE).unlink()
    else:
        (newest / STATE).write_bytes(pickle.dumps({"optimizer": Planted(str(tmp_path / "code-ran"))}))

    with pytest.warns(UserWarning, match="step-2 is unreadable"):
        found = load_latest(tmp_path, model, optimizer, scheduler, SINGLE)
    assert found is not None and found[0].name == "step-1"
    assert all(torch.equal(p, at_step_1[n]) for n, p in model.named_parameters())
    assert not (tmp_path / "code-ran").exists()


def test_no_readable_checkpoint_means_a_fresh_start_with_the_model_untouched(tmp_path):
    model, optimizer, scheduler = _setup()
    only = _save(tmp_path, 1, model, optimizer, scheduler)
    (only / STATE).write_bytes(b"\x80garbage")
    fresh, fresh_opt, fresh_sched = _setup(seed=5)
    before = _weights(fresh)
    with pytest.warns(UserWarning, match="unreadable"):
        assert load_latest(tmp_path, fresh, fresh_opt, fresh_sched, SINGLE) is None
    assert all(torch.equal(p, before[n]) for n, p in fresh.named_parameters())


def test_old_checkpoints_are_pruned_and_no_staging_folder_remains(tmp_path):
    model, optimizer, scheduler = _setup()
    for step in (1, 2, 3):
        _save(tmp_path, step, model, optimizer, scheduler, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-2", "step-3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-2", "step-3"]


def test_a_checkpoint_symlink_out_of_the_folder_is_never_deleted_or_written_through(tmp_path):
    from mosaic_it.errors import MosaicItError

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    root = tmp_path / "checkpoints"
    root.mkdir()
    (root / "step-1").symlink_to(outside, target_is_directory=True)
    model, optimizer, scheduler = _setup()
    assert list_checkpoints(root) == []  # never resumed from, never pruned
    with pytest.raises(MosaicItError, match="resolves outside the output folder"):
        _save(root, 1, model, optimizer, scheduler)
    assert [p.name for p in outside.iterdir()] == ["keep.txt"]
