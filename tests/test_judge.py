"""Pairwise judging against a real OpenAI-compatible HTTP endpoint served on loopback by the test."""
from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mosaic_it.config.evaluate import JudgeConfig
from mosaic_it.errors import ConfigError, MosaicItError
from mosaic_it.evaluate.judge import JudgeClient, combine, judge_all, parse_scores, tally

KEY = "test-key-123"


class JudgeServer:
    """Scores each answer by its length (longer is better, capped at 10); fails on request."""

    def __init__(self, fail_first: int = 0, status: int = 503, reply_style: str = "plain") -> None:
        self.requests: list[dict] = []
        self.headers: list[str | None] = []
        self.fail_left = fail_first
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.headers.append(self.headers.get("Authorization"))
                server.requests.append(body)
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": "not found"})
                if server.fail_left > 0:
                    server.fail_left -= 1
                    return self._send(status, {"error": "busy"})
                if self.headers.get("Authorization") != f"Bearer {KEY}":
                    return self._send(401, {"error": "bad key"})
                prompt = body["messages"][-1]["content"]
                first = re.search(r"\[Answer 1\]\n(.*?)\n\[End of Answer 1\]", prompt, re.S).group(1)
                second = re.search(r"\[Answer 2\]\n(.*?)\n\[End of Answer 2\]", prompt, re.S).group(1)
                s1, s2 = min(10, 1 + len(first) // 10), min(10, 1 + len(second) // 10)
                text = {"plain": f"{s1} {s2}\nLonger answers say more.",
                        "labelled": f"Here is my view.\nAnswer 1: {s1}/10\nAnswer 2: {s2}/10",
                        "garbage": "I cannot decide."}[reply_style]
                self._send(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]})

            def _send(self, code, payload):
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def judge_key(monkeypatch):
    monkeypatch.setenv("TEST_JUDGE_KEY", KEY)
    return "TEST_JUDGE_KEY"


def config(url, env, **extra):
    return JudgeConfig(url=url, model="judge-test", api_key_env=env, backoff_s=0.01, timeout_s=5, workers=2, **extra)


@pytest.mark.parametrize("reply,scores", [
    ("7 4\nbecause", (7.0, 4.0)),
    ("**Scores:** 10 9", (10.0, 9.0)),
    ("8/10 6/10", (8.0, 6.0)),
    ("Thoughts first.\nAnswer 1 gets 3, Answer 2 gets 9.", (3.0, 9.0)),
    ("no numbers at all", None),
    ("1 2 3", None),
])
def test_parse_scores(reply, scores):
    assert parse_scores(reply) == scores


def test_combine_both_orders():
    assert combine((8, 5), (5, 8)) == "win"  # A ahead in both orders
    assert combine((8, 5), (6, 6)) == "win"  # a win and a tie
    assert combine((8, 5), (8, 5)) == "tie"  # position bias: first answer always wins
    assert combine((5, 8), (8, 5)) == "lose"
    assert combine((5, 5), (5, 5)) == "tie"
    assert combine(None, (5, 8)) == "error"
    assert tally([{"outcome": "win"}, {"outcome": "lose"}, {"outcome": "win"}, {"outcome": "error"}]) == {
        "win": 2.0, "tie": 0.0, "lose": 1.0, "error": 1.0, "winning_score": pytest.approx(4 / 3), "win_rate": pytest.approx(2 / 3)}


def test_judging_both_orders_against_a_live_endpoint(judge_key):
    long, short = "A detailed answer with several sentences of content.", "Short."
    with JudgeServer() as server:
        client = JudgeClient(config(server.url, judge_key))
        verdicts = judge_all(client, ["q1", "q2", "q3"], [long, short, short], [short, long, short])
    assert [v["outcome"] for v in verdicts] == ["win", "lose", "tie"]
    assert len(server.requests) == 6 and set(server.headers) == {f"Bearer {KEY}"}
    assert all(r["model"] == "judge-test" and r["temperature"] == 0 for r in server.requests)
    # The second request of a pair shows the answers the other way round.
    prompts = sorted(r["messages"][-1]["content"] for r in server.requests if "q1" in r["messages"][-1]["content"])
    assert {p.index(long) < p.index(short) for p in prompts} == {True, False}


def test_retries_with_backoff_then_succeeds(judge_key):
    with JudgeServer(fail_first=2) as server:
        client = JudgeClient(config(server.url, judge_key, max_retries=3))
        assert client.complete([{"role": "user", "content": "[Answer 1]\nxx\n[End of Answer 1]\n[Answer 2]\ny\n[End of Answer 2]"}]).startswith("1 1")
    assert len(server.requests) == 3


def test_gives_up_after_retries_and_never_shows_the_key(judge_key):
    with JudgeServer(fail_first=10) as server:
        client = JudgeClient(config(server.url, judge_key, max_retries=1))
        with pytest.raises(MosaicItError, match="HTTP 503") as info:
            client.complete([{"role": "user", "content": "x"}])
    assert len(server.requests) == 2 and KEY not in str(info.value)


def test_wrong_key_fails_at_once(monkeypatch):
    monkeypatch.setenv("TEST_JUDGE_KEY", "wrong")
    with JudgeServer() as server:
        client = JudgeClient(config(server.url, "TEST_JUDGE_KEY", max_retries=3))
        with pytest.raises(MosaicItError, match="HTTP 401"):
            client.complete([{"role": "user", "content": "x"}])
    assert len(server.requests) == 1


def test_labelled_and_unreadable_replies(judge_key):
    with JudgeServer(reply_style="labelled") as server:
        verdicts = judge_all(JudgeClient(config(server.url, judge_key)), ["q"], ["much longer answer here"], ["s"])
    assert verdicts[0]["outcome"] == "win"
    with JudgeServer(reply_style="garbage") as server:
        verdicts = judge_all(JudgeClient(config(server.url, judge_key)), ["q"], ["a"], ["b"])
    assert verdicts[0]["outcome"] == "error"


def test_missing_key_and_unreachable_endpoint(monkeypatch, judge_key):
    monkeypatch.delenv("NO_SUCH_JUDGE_KEY", raising=False)
    with pytest.raises(ConfigError, match="NO_SUCH_JUDGE_KEY"):
        JudgeClient(config("http://127.0.0.1:9/v1", "NO_SUCH_JUDGE_KEY"))
    with JudgeServer() as server:
        url = server.url  # a port that was just freed: nothing listens there any more
    client = JudgeClient(config(url, judge_key, max_retries=1))
    with pytest.raises(MosaicItError, match="unreachable"):
        client.complete([{"role": "user", "content": "x"}])
