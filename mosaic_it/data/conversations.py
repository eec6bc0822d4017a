"""Single-turn chat records (OpenAI `messages` or ShareGPT `conversations`) as instruction records.

A system message, when present, leads the instruction, separated by a blank line, so that nothing
the user wrote is lost. Anything other than [system], user, assistant is rejected with a reason:
the Mosaic method concatenates independent single-turn pairs, so a multi-turn dialogue cannot be
used as one.
"""
from __future__ import annotations

from typing import Any

CONVERSATION_KEYS = ("messages", "conversations")
ROLES = {
    "system": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "chatgpt": "assistant",
    "model": "assistant",
}


def is_conversation(value: dict[str, Any]) -> bool:
    return any(key in value for key in CONVERSATION_KEYS)


def normalise_conversation(value: dict[str, Any], missing: Any) -> tuple[dict[str, Any] | None, str | None]:
    """Return (fields, None) for a usable single-turn record, else (None, reason)."""
    turns = next(value[key] for key in CONVERSATION_KEYS if key in value)
    if not isinstance(turns, list):
        return None, "malformed_conversation"
    parsed: list[tuple[str, Any]] = []
    for turn in turns:
        if not isinstance(turn, dict):
            return None, "malformed_conversation"
        role = turn.get("role", turn.get("from"))
        role = ROLES.get(role.lower()) if isinstance(role, str) else None
        if role is None:
            return None, "malformed_conversation"
        parsed.append((role, turn.get("content", turn.get("value", missing))))

    system = [content for role, content in parsed if role == "system"]
    dialogue = [(role, content) for role, content in parsed if role != "system"]
    roles = [role for role, _ in dialogue]
    if roles.count("user") > 1 or roles.count("assistant") > 1:
        return None, "multi_turn_conversation"
    if roles != ["user", "assistant"] or len(system) > 1 or (system and parsed[0][0] != "system"):
        return None, "malformed_conversation"

    instruction, output = dialogue[0][1], dialogue[1][1]
    if system:
        if not isinstance(system[0], str):
            return None, "malformed_conversation"
        if isinstance(instruction, str) and system[0].strip():
            instruction = f"{system[0]}\n\n{instruction}"
    return {"instruction": instruction, "input": "", "output": output}, None
