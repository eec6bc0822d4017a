"""Pairwise judging against a real OpenAI-compatible HTTP endpoint served on loopback by the test."""
from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mosaic_it.config.evaluate import JudgeConfig
from mosaic_it.errors import ConfigError, MosaicItError
from mosaic_it.evaluate.judge import JudgeClient, JudgeRefused, combine, judge_all, parse_scores, tally
from mosaic_it.redact import redact_text, redact_url

KEY = "test-key-123"


class JudgeServer:
    """Scores each answer by its length (longer is better, capped at 10); fails on request."""

    def __init__(self, fail_first: int = 0, status: int = 503, reply_style: str = "plain",
                 redirect_to: str | None = None, fail_when: str | None = None) -> None:
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
                if redirect_to is not None:
                    return self._send(307, {}, {"Location": redirect_to})
                if self.path.startswith(("/old/", "/moved/")):  # same-origin redirects to the endpoint
                    return self._send(307 if self.path.startswith("/old/") else 302, {}, {"Location": "/v1/chat/completions"})
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": "not found"})
                if fail_when is not None and fail_when in body["messages"][-1]["content"]:
                    return self._send(500, {"error": "this one always fails"})
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
                        "garbage": "I cannot decide.", "number": 7, "list": ["7 4"], "null": None, "missing": None}[reply_style]
                message = {"role": "assistant"} if reply_style == "missing" else {"role": "assistant", "content": text}
                self._send(200, {"choices": [{"index": 0, "message": message}]})

            def _send(self, code, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(code)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
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


class DribbleServer:
    """Sends a chat completion's headers, then its body one byte every `gap_s` (or stalls after one)."""

    def __init__(self, gap_s: float = 0.2, stall: bool = False) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                body = json.dumps({"choices": [{"message": {"content": "7 4"}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for i in range(len(body)):
                        self.wfile.write(body[i:i + 1])
                        self.wfile.flush()
                        time.sleep(30 if stall else gap_s)
                except OSError:  # the client hung up, as it should
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


QUESTION = [{"role": "user", "content": "[Answer 1]\nxx\n[End of Answer 1]\n[Answer 2]\ny\n[End of Answer 2]"}]


def test_redirect_to_another_origin_never_receives_the_key(judge_key):
    with JudgeServer() as elsewhere:
        with JudgeServer(redirect_to=elsewhere.url + "/chat/completions") as server:
            client = JudgeClient(config(server.url, judge_key, max_retries=3))
            with pytest.raises(JudgeRefused, match="redirected to another origin"):
                client.complete(QUESTION)
    assert len(server.requests) == 1  # refused at once, not retried
    assert elsewhere.requests == [] and elsewhere.headers == []


def test_same_origin_307_is_followed_and_other_redirects_refused(judge_key):
    with JudgeServer() as server:
        origin = server.url.rsplit("/", 1)[0]
        client = JudgeClient(config(origin + "/old", judge_key))  # /old/... answers 307 to /v1/...
        assert client.complete(QUESTION).startswith("1 1")
        with pytest.raises(JudgeRefused, match="HTTP 302"):
            JudgeClient(config(origin + "/moved", judge_key)).complete(QUESTION)
    assert server.headers == [f"Bearer {KEY}"] * 3


@pytest.mark.parametrize("stall", [False, True], ids=["dribble", "stall"])
def test_a_slow_reply_is_cut_at_timeout_s(judge_key, stall):
    with DribbleServer(stall=stall) as server:  # the whole reply would take about 10 s (dribble) or 30 s
        client = JudgeClient(JudgeConfig(url=server.url, api_key_env=judge_key, timeout_s=1.0, max_retries=0))
        started = time.monotonic()
        with pytest.raises(MosaicItError, match=r"did not answer within compare.judge.timeout_s=1 s"):
            client.complete(QUESTION)
        elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 5  # without the deadline: 10 s (dribble) or 30 s (stall)


@pytest.mark.parametrize("style", ["number", "list", "null", "missing"])
def test_non_string_content_is_an_unreadable_verdict(judge_key, style):
    with JudgeServer(reply_style=style) as server:
        verdicts = judge_all(JudgeClient(config(server.url, judge_key)), ["q"], ["a"], ["b"])
    assert verdicts == [{"a_first": None, "b_first": None, "outcome": "error", "replies": ["", ""]}]
    assert len(server.requests) == 2  # an answer that came back is not retried


def test_finished_verdicts_are_kept_and_a_rerun_resumes(judge_key, tmp_path):
    journal = tmp_path / "pairwise" / "set.verdicts.jsonl"
    questions, long, short = ["q1", "q2", "q3"], "a much longer answer than the other", "short"
    with JudgeServer() as server:
        client = JudgeClient(config(server.url, judge_key))
        first = judge_all(client, questions, [long, short, long], [short, long, long], journal=journal, ids=[1, 2, 3])
        assert len(server.requests) == 6
        assert [json.loads(line)["id"] for line in journal.read_text().splitlines()] != []
        again = judge_all(client, questions, [long, short, long], [short, long, long], journal=journal, ids=[1, 2, 3])
        assert len(server.requests) == 6 and again == first  # nothing asked again
        # A changed answer is a new pair; a torn last line (killed mid-write) is asked again.
        with journal.open("a") as handle:
            handle.write('{"key": "abc", "replies": ["7')
        changed = judge_all(client, questions, [long, short, "new"], [short, long, long], journal=journal, ids=[1, 2, 3])
        assert len(server.requests) == 8
    assert [v["outcome"] for v in first] == ["win", "lose", "tie"]
    assert [v["outcome"] for v in changed] == ["win", "lose", "lose"]
    assert len([line for line in journal.read_text().splitlines() if line.startswith('{"key": "')]) == 5


def test_pairs_that_keep_failing_are_errors_and_the_error_share_decides(judge_key, tmp_path):
    from mosaic_it.config.evaluate import CompareConfig
    from mosaic_it.evaluate.compare import judge_arms

    for arm, answer in (("base", "short"), ("cand", "a much longer answer")):
        folder = tmp_path / arm / "generations" / "pairwise"
        folder.mkdir(parents=True)
        rows = [{"id": i, "prompt": f"question {i}" + (" FAIL" if i == 3 else ""), "response": answer} for i in range(4)]
        (folder / "koala.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with JudgeServer(fail_when="FAIL") as server:
        strict = config(server.url, judge_key, max_retries=1)
        with pytest.raises(MosaicItError, match=r"max_error_fraction=0.1 of the pairs: koala 1/4 \(judge endpoint .* HTTP 500\)"):
            judge_arms(CompareConfig(), strict, tmp_path / "base", tmp_path / "cand", tmp_path / "out")
        assert len(server.requests) == 3 * 2 + 2  # three pairs judged, the failing one tried twice
        lenient = strict.model_copy(update={"max_error_fraction": 0.25})
        result = judge_arms(CompareConfig(), lenient, tmp_path / "base", tmp_path / "cand", tmp_path / "out")
        assert len(server.requests) == 8 + 2  # the three finished verdicts came from the journal
    assert result == {"koala": {"win": 3.0, "tie": 0.0, "lose": 0.0, "error": 1.0, "winning_score": 2.0, "win_rate": 1.0}}
    rows = [json.loads(line) for line in (tmp_path / "out" / "pairwise" / "koala.jsonl").read_text().splitlines()]
    assert [r["outcome"] for r in rows] == ["win", "win", "win", "error"] and "HTTP 500" in rows[3]["failure"]


def test_compare_inputs_of_the_wrong_shape_name_file_and_line(judge_key, tmp_path):
    from mosaic_it.config.evaluate import CompareConfig
    from mosaic_it.errors import InputFileError
    from mosaic_it.evaluate.compare import judge_arms

    for arm in ("base", "cand"):
        folder = tmp_path / arm / "generations" / "pairwise"
        folder.mkdir(parents=True)
        (folder / "koala.jsonl").write_text('{"id": 1, "prompt": "q", "response": "r"}\n{"id": 2, "prompt": "q", "response": 5}\n')
    with pytest.raises(InputFileError, match=r"base/generations/pairwise/koala.jsonl:2: a generation needs"):
        judge_arms(CompareConfig(), config("http://127.0.0.1:9/v1", judge_key), tmp_path / "base", tmp_path / "cand", tmp_path)


SECRET_URLS = [
    ("https://alice:s3cret@judge.example/v1", "https://***@judge.example/v1"),
    ("http://127.0.0.1:8000/v1?api_key=s3cret&model=x", "http://127.0.0.1:8000/v1?api_key=***&model=x"),
    ("https://judge.example/v1?key=s3cret", "https://judge.example/v1?key=***"),
    ("https://judge.example/v1?access_token=s3cret&X-Api-Key=s3cret", "https://judge.example/v1?access_token=***&X-Api-Key=***"),
    ("https://judge.example/v1", "https://judge.example/v1"),
]


@pytest.mark.parametrize("url,shown", SECRET_URLS)
def test_secrets_in_urls_are_masked(url, shown):
    from mosaic_it.tracking import flatten

    assert redact_url(url) == shown
    assert redact_text(f"judge endpoint {url} unreachable") == f"judge endpoint {shown} unreachable"
    assert flatten({"compare": {"judge": {"url": url}}}) == {"compare.judge.url": shown}


def test_error_messages_never_show_url_secrets(judge_key):
    with JudgeServer() as server:
        url = server.url.replace("http://", "http://alice:s3cret@") + "?api_key=s3cret"
    client = JudgeClient(config(url, judge_key, max_retries=0))  # nothing listens there any more
    with pytest.raises(MosaicItError) as info:
        client.complete(QUESTION)
    assert "unreachable" in str(info.value) and "s3cret" not in str(info.value) and "***" in str(info.value)


def test_bad_urls_are_config_errors_and_a_bad_redirect_is_refused(judge_key):
    for url in ("ftp://judge.example/v1", "http://[::1/v1", "not a url"):
        with pytest.raises(ConfigError, match="compare.judge.url"):
            JudgeClient(config(url, judge_key))
    with JudgeServer(redirect_to="http://[::1/v1/chat/completions") as server:  # httpx refuses it itself
        with pytest.raises(MosaicItError, match="Invalid URL in location header"):
            JudgeClient(config(server.url, judge_key, max_retries=0)).complete(QUESTION)
    assert server.headers == [f"Bearer {KEY}"]


def test_the_http_client_log_never_shows_url_secrets(judge_key, caplog):
    with JudgeServer() as server:
        client = JudgeClient(config(server.url + "?api_key=s3cret", judge_key, max_retries=0))
        with caplog.at_level("INFO", logger="httpx"), pytest.raises(JudgeRefused, match="HTTP 404"):
            client.complete(QUESTION)  # the query string moves the path: 404, logged by httpx
    assert "HTTP Request: POST" in caplog.text and "api_key=***" in caplog.text and "s3cret" not in caplog.text
