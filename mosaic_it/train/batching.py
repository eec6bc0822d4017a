"""Which samples share a step, and how a micro-batch becomes tensors under each batching regime.

- pad_to_max: every sample padded to max_length (the paper's FastChat baseline).
- dynamic: padded to the longest sample of its micro-batch; batches grouped by length.
- packed: the micro-batch's samples concatenated into one row with no padding at all;
  position ids restart at 0 for every sample and the varlen attention path (train/attention.py)
  attends within each sample only, so samples never see each other and attention costs the sum
  of squared sample lengths, not the square of the row.

Targets are shifted inside each sample before concatenation (targets[t] = labels[t + 1]),
so no position ever learns to predict the first token of the next packed sample.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch

from mosaic_it.train.data import IGNORE, Example

GROUP_CHUNK = 50  # micro-batches per length-sorted chunk when grouping by length

MicroBatch = list[int]  # sample indices
Step = list[MicroBatch]  # every micro-batch of one optimizer step, all ranks together


def plan_epoch(lengths: list[int], batch_size: int, seed: int, epoch: int, group_by_length: bool) -> list[MicroBatch]:
    rng = random.Random(f"{seed}:{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if group_by_length:
        chunk = batch_size * GROUP_CHUNK
        order = [i for s in range(0, len(order), chunk)
                 for i in sorted(order[s:s + chunk], key=lambda i: -lengths[i])]
    batches = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    if group_by_length:
        rng.shuffle(batches)  # grouped, but long and short batches still interleave
    return batches


def plan_steps(lengths: list[int], batch_size: int, grad_accum: int, world_size: int, seed: int,
               group_by_length: bool, epochs: float, max_steps: int | None) -> list[Step]:
    """The whole run's steps; each holds grad_accum * world_size micro-batches (rank r takes r::world)."""
    per_step = grad_accum * world_size
    per_epoch = math.ceil(len(lengths) / batch_size)
    if max_steps is None:
        wanted = max(world_size, math.ceil(epochs * per_epoch))
    else:
        wanted = max_steps * per_step
    micro: list[MicroBatch] = []
    epoch = 0
    while len(micro) < wanted:
        micro.extend(plan_epoch(lengths, batch_size, seed, epoch, group_by_length))
        epoch += 1
    micro = micro[:wanted]
    micro = micro[: len(micro) - len(micro) % world_size]  # every rank runs the same number of passes
    return [micro[s:s + per_step] for s in range(0, len(micro), per_step)]


@dataclass
class Batch:
    tensors: dict[str, torch.Tensor]  # model inputs
    targets: torch.Tensor  # already shifted; IGNORE where no loss
    real_tokens: int
    padded_tokens: int  # positions the device computes, padding included
    sum_sq_real: int  # sum of squared sample lengths (attention cost of real tokens)
    sum_sq_padded: int  # attention span actually computed: rows^2 when padded, per sample when packed

    @property
    def target_tokens(self) -> int:
        return int((self.targets != IGNORE).sum())


def _shifted(example: Example) -> list[int]:
    return example.labels[1:] + [IGNORE]


def collate(examples: list[Example], regime: str, max_length: int, pad_id: int) -> Batch:
    lengths = [len(e) for e in examples]
    sum_sq = sum(n * n for n in lengths)
    if regime == "packed":
        ids = [t for e in examples for t in e.input_ids]
        targets = [t for e in examples for t in _shifted(e)]
        positions = [p for n in lengths for p in range(n)]
        tensors = {
            "input_ids": torch.tensor([ids]),
            "position_ids": torch.tensor([positions]),
        }
        return Batch(tensors, torch.tensor([targets]), len(ids), len(ids), sum_sq, sum_sq)
    width = max_length if regime == "pad_to_max" else max(lengths)
    ids = torch.full((len(examples), width), pad_id)
    targets = torch.full((len(examples), width), IGNORE)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example)
        ids[row, :n] = torch.tensor(example.input_ids)
        targets[row, :n] = torch.tensor(_shifted(example))
        mask[row, :n] = 1
    tensors = {"input_ids": ids, "attention_mask": mask}
    return Batch(tensors, targets, sum(lengths), len(examples) * width, sum_sq, len(examples) * width * width)
