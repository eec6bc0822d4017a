"""Building one mosaic sample from a handful of records: draw a layout and a rule, then render."""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mosaic_it.mosaic import draws, phrasing
from mosaic_it.mosaic.layout import Layout, draw_layout, instruction_parts, output_parts
from mosaic_it.mosaic.rules import MASK_RULES, ORDER_RULES, Rule, applicable
from mosaic_it.records import instruction_text

STRATEGIES = ("format", "order", "mask")


@dataclass(frozen=True)
class Plan:
    """Everything random about a sample; rendering a plan is deterministic."""

    layout: Layout
    strategy: str
    rule: Rule | None
    args: dict[str, Any]
    # The meta-instruction's sentences, each after the first with the space that joins it: they
    # recur across samples where the whole rarely does, so their counts are learnt once.
    meta_pieces: tuple[str, ...]
    response_positions: list[int]

    @property
    def meta_instruction(self) -> str:
        return "".join(self.meta_pieces)


def draw_strategy(mix: str, rng: random.Random) -> str:
    return draws.choice(rng, STRATEGIES) if mix == "both" else mix


def _rule_sentence(rule: Rule, texts: Sequence[str], args: dict[str, Any], rng: random.Random) -> list[str]:
    fills = {name: phrasing.number_list(value, rng) for name, value in args.items() if isinstance(value, list)}
    fills.update({name: value for name, value in args.items() if not isinstance(value, list)})
    sentences = [draws.choice(rng, rule.phrasings).format(**fills)]
    if rule.has_ties(texts):
        sentences.append(phrasing.tie_sentence(rng))
    return sentences


def _pick_rule(
    strategy: str, texts: Sequence[str], layout: Layout, rng: random.Random, rule_name: str | None
) -> tuple[Rule, dict[str, Any]] | None:
    registry = ORDER_RULES if strategy == "order" else MASK_RULES
    if rule_name is not None:
        names = [rule_name]
    else:
        names = [name for name, rule in registry.items() if applicable(rule, texts, layout.numbered)]
        draws.shuffle(rng, names)
    for name in names:
        rule = registry[name]
        if not applicable(rule, texts, layout.numbered):
            continue
        args = rule.choose(texts, rng)
        if args is not None:
            return rule, args
    return None


def plan_sample(
    texts: Sequence[str],
    rng: random.Random,
    strategy: str,
    rule_name: str | None = None,
    layout: Layout | None = None,
) -> Plan:
    """Draw a plan. With `rule_name` the rule is forced and ValueError says when it cannot apply."""
    layout = layout or draw_layout(rng)
    picked = None
    if strategy in ("order", "mask"):
        picked = _pick_rule(strategy, texts, layout, rng, rule_name)
        if picked is None and rule_name is not None:
            raise ValueError(f"{strategy} rule {rule_name} does not apply to these {len(texts)} instruction(s)")
    sentences = phrasing.format_sentences(layout, rng)
    args: dict[str, Any]
    if picked is None:
        strategy, rule, args = "format", None, {}
        positions = list(range(len(texts)))
    else:
        rule, args = picked
        positions = rule.arrange(texts, args)
        sentences += _rule_sentence(rule, texts, args, rng)
    draws.shuffle(rng, sentences)
    return Plan(layout, strategy, rule, args, meta_pieces(sentences), positions)


def meta_pieces(sentences: Sequence[str]) -> tuple[str, ...]:
    """The pieces of " ".join(sentences). Every sentence starts and ends with a non-space
    (tests/test_mosaic_rules.py), so each joining space starts a segment (mosaic.segments)."""
    return (sentences[0], *[" " + sentence for sentence in sentences[1:]]) if sentences else ()


def render(plan: Plan, texts: Sequence[str], responses: Sequence[str]) -> tuple[list[str], list[str]]:
    """The instruction and output of a plan, as lists of pieces (joined, they are the sample)."""
    return (
        instruction_parts(plan.layout, texts, plan.meta_pieces),
        output_parts(plan.layout, responses, plan.response_positions),
    )


def sample_record(plan: Plan, instruction: str, output: str, source_ids: Sequence[int], epoch: int) -> dict:
    return {
        "instruction": instruction,
        "input": "",
        "output": output,
        "count": len(source_ids),
        "mosaic": {
            "source_ids": list(source_ids),
            "strategy": plan.strategy,
            "rule": plan.rule.name if plan.rule else None,
            "response_ids": [source_ids[p] for p in plan.response_positions],
            "epoch": epoch,
            "rule_args": plan.args,
            "format": plan.layout.as_dict(),
            "meta_instruction": plan.meta_instruction,
        },
    }


def make_sample(
    records: Sequence[dict[str, Any]],
    source_ids: Sequence[int],
    rng: random.Random,
    strategy: str,
    rule: str | None = None,
    epoch: int = 0,
) -> dict:
    """One sample from `records` (records[k] has id source_ids[k]), e.g. to build evaluation probes."""
    texts = [instruction_text(r) for r in records]
    responses = [r["output"] for r in records]
    plan = plan_sample(texts, rng, strategy, rule)
    instruction, output = render(plan, texts, responses)
    return sample_record(plan, "".join(instruction), "".join(output), source_ids, epoch)
