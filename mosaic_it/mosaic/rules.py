"""Registries of order and mask rules.

A rule is declared once, with its phrasings, next to the one function that defines it:

    @order_rule("REVERSE", phrasings=("Answer them from the last to the first.", ...))
    def reverse(texts, args):
        return list(range(len(texts)))[::-1]

`arrange(texts, args)` returns the sample positions whose responses are written, in output order.
`choose(texts, rng)` draws the rule's arguments (e.g. a permutation) or returns None where the
rule cannot be stated unambiguously for these instructions.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Args = dict[str, Any]
Arrange = Callable[[Sequence[str], Args], list[int]]
Choose = Callable[[Sequence[str], random.Random], "Args | None"]


def no_args(texts: Sequence[str], rng: random.Random) -> Args | None:
    return {}


@dataclass(frozen=True)
class Rule:
    name: str
    kind: Literal["order", "mask"]
    phrasings: tuple[str, ...]
    arrange: Arrange
    choose: Choose = no_args
    needs_numbering: bool = False
    # For rules that sort by a key: when keys tie, the stable sort keeps the given order and the
    # meta-instruction says so, so the target stays well defined.
    key: Callable[[str], Any] | None = None

    def has_ties(self, texts: Sequence[str]) -> bool:
        if self.key is None:
            return False
        keys = [self.key(text) for text in texts]
        return len(set(keys)) < len(keys)


ORDER_RULES: dict[str, Rule] = {}
MASK_RULES: dict[str, Rule] = {}


def _register(registry: dict[str, Rule], kind: str, name: str, **options: Any) -> Callable[[Arrange], Arrange]:
    def decorate(arrange: Arrange) -> Arrange:
        if name in registry:
            raise ValueError(f"{kind} rule {name} is registered twice")
        registry[name] = Rule(name=name, kind=kind, arrange=arrange, **options)  # type: ignore[arg-type]
        return arrange

    return decorate


def order_rule(name: str, **options: Any) -> Callable[[Arrange], Arrange]:
    return _register(ORDER_RULES, "order", name, **options)


def mask_rule(name: str, **options: Any) -> Callable[[Arrange], Arrange]:
    return _register(MASK_RULES, "mask", name, **options)


def rules_for(kind: str) -> dict[str, Rule]:
    return ORDER_RULES if kind == "order" else MASK_RULES


def applicable(rule: Rule, texts: Sequence[str], numbered: bool) -> bool:
    return len(texts) >= 2 and (numbered or not rule.needs_numbering)
