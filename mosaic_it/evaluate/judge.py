"""Pairwise judging through any OpenAI-compatible chat-completions endpoint.

Each pair is judged twice, once with each answer first, to cancel the judge's position bias.
Per order, the answer with the higher score wins that order. The pair's outcome for answer A:
win when A wins both orders or wins one and ties the other; lose in the mirror case; tie
otherwise (a tie in both orders, or one win each). A reply with no readable scores makes the
pair an "error", counted apart from win/tie/lose; so does a pair the endpoint still fails on after
its retries (reported with its `failure` reason, and asked again on the next run).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import httpx

from mosaic_it.config.evaluate import JudgeConfig
from mosaic_it.errors import ConfigError, MosaicItError
from mosaic_it.evaluate.verdicts import append, open_journal, pair_key, read_journal
from mosaic_it.progress import progress
from mosaic_it.redact import redact_logger, redact_text, redact_url

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
FATAL = {401, 403, 404, 405}  # no pair can succeed: stop rather than fail every pair
MAX_REDIRECTS = 3
MAX_REPLY_BYTES = 1 << 20
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


class JudgeRefused(MosaicItError):
    """The endpoint cannot judge any pair (bad key, wrong URL, a redirect elsewhere): stop at once."""


class JudgeClient:
    """POSTs chat completions over httpx with retries and exponential backoff.

    The key stays in memory and goes only to the configured origin: a redirect to another scheme,
    host or port is refused. A same-origin 307/308 (which keeps the POST body) is followed, up to
    MAX_REDIRECTS hops; any other redirect is refused, since it would turn the POST into a GET.
    `timeout_s` bounds each attempt as a whole, connecting, sending and reading included.
    """

    def __init__(self, cfg: JudgeConfig) -> None:
        if not cfg.url:
            raise ConfigError("compare.judge.url is not set")
        key = os.environ.get(cfg.api_key_env)
        if key is None:
            raise ConfigError(f"environment variable {cfg.api_key_env} (compare.judge.api_key_env) is not set; "
                              "set it to the judge's API key (any value for a server without keys)")
        self.cfg = cfg
        try:
            self.endpoint = httpx.URL(cfg.url.rstrip("/") + "/chat/completions")
        except (httpx.InvalidURL, ValueError):
            raise ConfigError(f"compare.judge.url {redact_url(cfg.url)} is not a valid URL") from None
        if self.endpoint.scheme not in ("http", "https") or not self.endpoint.host:
            raise ConfigError(f"compare.judge.url {redact_url(cfg.url)} is not an http(s) URL")
        self.shown = redact_url(str(self.endpoint))  # what messages may print
        self._headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        self._http = httpx.Client(follow_redirects=False)
        redact_logger("httpx")  # it logs each request's URL at INFO

    def close(self) -> None:
        self._http.close()

    def pair_key(self, question: str, answer_a: str, answer_b: str) -> str:
        return pair_key(self.cfg.model, self.shown, SYSTEM, TEMPLATE, question, answer_a, answer_b)

    def _next_hop(self, url: httpx.URL, response: httpx.Response) -> httpx.URL:
        target = url.join(response.headers["Location"])  # httpx has already refused an invalid one
        if (target.scheme, target.host, target.port) != (url.scheme, url.host, url.port):
            raise JudgeRefused(f"judge endpoint {self.shown} redirected to another origin ({redact_url(str(target))}); "
                               "the API key is never sent there: set compare.judge.url to the endpoint itself")
        if response.status_code not in (307, 308):
            raise JudgeRefused(f"judge endpoint {self.shown} answered HTTP {response.status_code} (a redirect that "
                               "drops the request body); set compare.judge.url to the endpoint itself")
        return target

    def _post_once(self, body: bytes) -> str:
        deadline = time.monotonic() + self.cfg.timeout_s
        url = self.endpoint
        for _ in range(MAX_REDIRECTS + 1):
            timeout = max(deadline - time.monotonic(), 0.001)
            with self._http.stream("POST", url, content=body, headers=self._headers, timeout=timeout) as response:
                if response.is_redirect:
                    url = self._next_hop(url, response)
                    continue
                if response.status_code >= 400:
                    raise _Status(response.status_code)
                return reply_content(_read_body(response, deadline))
        raise JudgeRefused(f"judge endpoint {self.shown} redirected more than {MAX_REDIRECTS} times")

    def complete(self, messages: list[dict[str, str]]) -> str:
        body = json.dumps({"model": self.cfg.model, "messages": messages, "temperature": 0,
                           "max_tokens": self.cfg.max_tokens}).encode("utf-8")
        for attempt in range(self.cfg.max_retries + 1):
            last = attempt == self.cfg.max_retries
            try:
                return self._post_once(body)
            except _Status as exc:
                message = f"judge endpoint {self.shown} answered HTTP {exc.code}"
                if exc.code in FATAL:
                    raise JudgeRefused(message) from None
                if exc.code not in RETRYABLE or last:
                    raise MosaicItError(message) from None
            except (_Deadline, httpx.TimeoutException):
                if last:
                    raise MosaicItError(f"judge endpoint {self.shown} did not answer within "
                                        f"compare.judge.timeout_s={self.cfg.timeout_s:g} s") from None
            except httpx.RequestError as exc:  # network, protocol and content-decoding failures
                if last:
                    reason = redact_text(str(exc)) or type(exc).__name__
                    raise MosaicItError(f"judge endpoint {self.shown} unreachable: {reason}") from None
            except _Unreadable as exc:
                if last:
                    raise MosaicItError(f"judge endpoint {self.shown} sent no chat completion ({exc})") from None
            time.sleep(self.cfg.backoff_s * 2**attempt)
        raise AssertionError("unreachable")


class _Status(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


class _Deadline(Exception):
    pass


class _Unreadable(Exception):
    pass


def _read_body(response: httpx.Response, deadline: float) -> bytes:
    """The body, cut at `deadline` even when the server keeps dribbling bytes or stalls mid-body."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    # A blocked read only wakes when the socket is shut down, so a timer does that at the deadline.
    watchdog = threading.Timer(max(deadline - time.monotonic(), 0), _shutdown, (sock,))
    watchdog.daemon = True
    watchdog.start()
    chunks, size = [], 0
    try:
        for chunk in response.iter_bytes():
            if time.monotonic() >= deadline:
                raise _Deadline
            size += len(chunk)
            if size > MAX_REPLY_BYTES:
                raise _Unreadable(f"reply longer than {MAX_REPLY_BYTES} bytes")
            chunks.append(chunk)
    except httpx.RequestError:
        if time.monotonic() >= deadline:
            raise _Deadline from None
        raise
    finally:
        watchdog.cancel()
    if time.monotonic() >= deadline:
        raise _Deadline
    return b"".join(chunks)


def _shutdown(sock: socket.socket | None) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def reply_content(body: bytes) -> str:
    """The text of a chat completion; a reply without a string `content` reads as "" (no scores)."""
    try:
        payload = json.loads(body)
        message = payload["choices"][0]["message"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise _Unreadable(f"not a chat completion: {type(exc).__name__}") from None
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else ""


def judge_pair(client: JudgeClient, question: str, answer_a: str, answer_b: str) -> dict[str, Any]:
    return verdict([client.complete(judge_messages(question, answer_a, answer_b)),
                    client.complete(judge_messages(question, answer_b, answer_a))])


def verdict(replies: list[str]) -> dict[str, Any]:
    """Scores and outcome of a pair from the replies to (A first, B first)."""
    first, second = parse_scores(replies[0]), parse_scores(replies[1])
    return {"a_first": first, "b_first": second, "outcome": combine(first, second), "replies": list(replies)}


def failed(reason: str) -> dict[str, Any]:
    """A pair the judge could not be asked about (after retries): an error, asked again on a rerun."""
    return {"a_first": None, "b_first": None, "outcome": "error", "replies": [], "failure": reason}


def judge_all(client: JudgeClient, questions: Sequence[str], answers_a: Sequence[str],
              answers_b: Sequence[str], desc: str = "judge", journal: Path | None = None,
              ids: Sequence[Any] | None = None) -> list[dict[str, Any]]:
    """One verdict per pair, in order. With a journal, finished verdicts are read from it instead of
    asked again, and each new one is appended as soon as it arrives. A pair that still fails after
    its retries becomes an "error" verdict with a `failure` reason; JudgeRefused stops everything."""
    jobs = list(zip(questions, answers_a, answers_b))
    keys = [client.pair_key(*job) for job in jobs]
    done = read_journal(journal) if journal is not None else {}
    verdicts: list[dict[str, Any] | None] = [verdict(done[k]) if k in done else None for k in keys]
    todo = [i for i, v in enumerate(verdicts) if v is None]
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(open_journal(journal)) if journal is not None and todo else None
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=client.cfg.workers))
        bar = stack.enter_context(progress(len(jobs), desc, unit="pair"))
        bar.update(len(jobs) - len(todo))
        futures = {pool.submit(judge_pair, client, *jobs[i]): i for i in todo}
        try:
            for future in as_completed(futures):
                bar.update(1)
                i = futures[future]
                try:
                    verdicts[i] = future.result()
                except JudgeRefused:
                    raise
                except MosaicItError as exc:
                    verdicts[i] = failed(str(exc))
                    continue
                if log is not None:
                    append(log, keys[i], ids[i] if ids is not None else i, verdicts[i]["replies"])
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return [v for v in verdicts if v is not None]


def tally(verdicts: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Counts per outcome, and the winning score (win - lose) / judged + 1 (1 means parity)."""
    counts = Counter(v["outcome"] for v in verdicts)
    judged = counts["win"] + counts["tie"] + counts["lose"]
    result = {name: float(counts[name]) for name in OUTCOMES}
    if judged:
        result["winning_score"] = (counts["win"] - counts["lose"]) / judged + 1
        result["win_rate"] = counts["win"] / judged
    return result
