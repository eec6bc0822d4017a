"""Pairwise judging through any OpenAI-compatible chat-completions endpoint.

Each pair is judged twice, once with each answer first, to cancel the judge's position bias.
Per order, the answer with the higher score wins that order. The pair's outcome for answer A:
win when A wins both orders or wins one and ties the other; lose in the mirror case; tie
otherwise (a tie in both orders, or one win each). A reply with no readable scores makes the
pair an "error", counted apart from win/tie/lose.
"""
from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mosaic_it.config.evaluate import JudgeConfig
from mosaic_it.errors import ConfigError, MosaicItError
from mosaic_it.progress import progress

SYSTEM = "You are a careful and impartial judge of answers written by AI assistants."
TEMPLATE = """Here is a question followed by two answers to it. Rate how well each answer serves the \
person who asked, weighing correctness, relevance, depth, clarity and level of detail. Judge the \
content rather than the length, and do not let the order of the answers sway you.

[Question]
{question}

[Answer 1]
{first}
[End of Answer 1]

[Answer 2]
{second}
[End of Answer 2]

On the first line, write only the two scores, each a whole number from 1 to 10, for Answer 1 and \
then Answer 2, separated by a space (for example: 7 4). Then explain your scores in a few sentences."""

OUTCOMES = ("win", "tie", "lose", "error")
RETRYABLE = {408, 409, 425, 429, 500, 502, 503, 504}
NUMBER = r"(10|[1-9])(?:\.\d+)?"


def judge_messages(question: str, first: str, second: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": TEMPLATE.format(question=question, first=first, second=second)}]


def parse_scores(reply: str) -> tuple[float, float] | None:
    """The two scores of a judge reply, from its first line or from labelled scores anywhere."""
    lines = [line.strip() for line in reply.strip().splitlines() if line.strip()]
    if lines:
        first_line = re.sub(r"/\s*10\b", "", lines[0].replace("*", ""))  # "8/10" is a score of 8
        numbers = re.findall(r"(?<![\d.])" + NUMBER + r"(?![\d])", first_line)
        if len(numbers) == 2:
            return float(numbers[0]), float(numbers[1])
    labelled = [re.search(rf"Answer {k}\D{{0,20}}?" + NUMBER, reply, re.IGNORECASE) for k in (1, 2)]
    if all(labelled):
        return float(labelled[0].group(1)), float(labelled[1].group(1))  # type: ignore[union-attr]
    return None


def order_outcome(score_a: float, score_b: float) -> int:
    return (score_a > score_b) - (score_a < score_b)


def combine(first: tuple[float, float] | None, second: tuple[float, float] | None) -> str:
    """`first` is (A, B) with A shown first; `second` is (B, A) with B shown first."""
    if first is None or second is None:
        return "error"
    total = order_outcome(first[0], first[1]) + order_outcome(second[1], second[0])
    return "win" if total > 0 else "lose" if total < 0 else "tie"


class JudgeClient:
    """POSTs chat completions with retries and exponential backoff; the key stays in memory."""

    def __init__(self, cfg: JudgeConfig) -> None:
        if not cfg.url:
            raise ConfigError("compare.judge.url is not set")
        key = os.environ.get(cfg.api_key_env)
        if key is None:
            raise ConfigError(f"environment variable {cfg.api_key_env} (compare.judge.api_key_env) is not set; "
                              "set it to the judge's API key (any value for a server without keys)")
        self.cfg = cfg
        self.endpoint = cfg.url.rstrip("/") + "/chat/completions"
        self._headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}

    def _post_once(self, body: bytes) -> str:
        request = urllib.request.Request(self.endpoint, data=body, headers=self._headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.cfg.timeout_s) as response:
            payload = json.loads(response.read().decode("utf-8"))
        return payload["choices"][0]["message"]["content"] or ""

    def complete(self, messages: list[dict[str, str]]) -> str:
        body = json.dumps({"model": self.cfg.model, "messages": messages, "temperature": 0,
                           "max_tokens": self.cfg.max_tokens}).encode("utf-8")
        for attempt in range(self.cfg.max_retries + 1):
            try:
                return self._post_once(body)
            except urllib.error.HTTPError as exc:
                if exc.code not in RETRYABLE or attempt == self.cfg.max_retries:
                    raise MosaicItError(f"judge endpoint {self.endpoint} answered HTTP {exc.code}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt == self.cfg.max_retries:
                    raise MosaicItError(f"judge endpoint {self.endpoint} unreachable: {exc}") from None
            except (ValueError, KeyError, IndexError, TypeError):
                if attempt == self.cfg.max_retries:
                    raise MosaicItError(f"judge endpoint {self.endpoint} sent no chat completion") from None
            time.sleep(self.cfg.backoff_s * 2**attempt)
        raise AssertionError("unreachable")


def judge_pair(client: JudgeClient, question: str, answer_a: str, answer_b: str) -> dict[str, Any]:
    first_reply = client.complete(judge_messages(question, answer_a, answer_b))
    second_reply = client.complete(judge_messages(question, answer_b, answer_a))
    first, second = parse_scores(first_reply), parse_scores(second_reply)
    return {"a_first": first, "b_first": second, "outcome": combine(first, second),
            "replies": [first_reply, second_reply]}


def judge_all(client: JudgeClient, questions: Sequence[str], answers_a: Sequence[str],
              answers_b: Sequence[str], desc: str = "judge") -> list[dict[str, Any]]:
    jobs = list(zip(questions, answers_a, answers_b))
    with ThreadPoolExecutor(max_workers=client.cfg.workers) as pool:
        verdicts = []
        with progress(len(jobs), desc, unit="pair") as bar:
            for verdict in pool.map(lambda job: judge_pair(client, *job), jobs):
                verdicts.append(verdict)
                bar.update(1)
        return verdicts


def tally(verdicts: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Counts per outcome, and the winning score (win - lose) / judged + 1 (1 means parity)."""
    counts = Counter(v["outcome"] for v in verdicts)
    judged = counts["win"] + counts["tie"] + counts["lose"]
    result = {name: float(counts[name]) for name in OUTCOMES}
    if judged:
        result["winning_score"] = (counts["win"] - counts["lose"]) / judged + 1
        result["win_rate"] = counts["win"] / judged
    return result
