"""Hostile input through the real `mosaic-it` entry point: every failure is one line and an exit code.

The commands run in-process through `mosaic_it.cli.main` (what the console script calls), with
stderr captured; a traceback, or the "internal error" line that stands in for one, fails the test.
"""
from __future__ import annotations

import contextlib
import gzip
import io
import json
from pathlib import Path

import pytest
import typer
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import mosaic_it.cli as cli_module
from mosaic_it.cli import main
from mosaic_it.config import load_params
from mosaic_it.errors import ConfigError, InputFileError
from mosaic_it.jsonl import iter_jsonl, iter_jsonl_lines
from mosaic_it.train.data import load_records

GOOD = {"instruction": "Name a colour.", "input": "", "output": "Blue."}


def run_cli(*args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `mosaic-it ARGS`."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.argv", ["mosaic-it", *args])
        with pytest.raises(SystemExit) as info:
            main()
    return info.value.code, out.getvalue(), err.getvalue()


def assert_one_line_failure(code: int, err: str, expected_code: int = 2, *fragments: str) -> None:
    # Progress and log lines may precede it; the failure itself is exactly one line.
    lines = [line for line in err.splitlines() if line.startswith(("error: ", "internal error", "interrupted", "Error"))]
    assert code == expected_code, err
    assert "Traceback" not in err and "internal error" not in err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0]


def jsonl(*rows) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


# --- the one input format --------------------------------------------------------------------

@pytest.mark.parametrize("data,message", [
    (gzip.compress(jsonl(GOOD), mtime=0), "gzip-compressed file: decompress it first"),
    (jsonl(GOOD).decode().encode("utf-16"), "UTF-16 or UTF-32 text: save it as UTF-8"),
    (jsonl(GOOD).decode().encode("utf-16-le"), "UTF-16 or UTF-32 text: save it as UTF-8"),
    (jsonl(GOOD) + b'{"instruction": "caf\xe9"}\n', ":2: not valid UTF-8"),
    (jsonl(GOOD) + b"{oops\n", ":2: not valid JSON"),
    (jsonl(GOOD) + b"[1, 2]\n", ":2: expected a JSON object"),
    (jsonl(GOOD) + b'{"instruction": "a\\ud800"}\n', ":2: a string holds a lone surrogate"),
    (b"[" * 50000 + b"]" * 50000 + b"\n", ":1: JSON nested too deeply"),
])
def test_the_jsonl_reader_names_file_line_and_fault(tmp_path, data, message):
    path = tmp_path / "data.jsonl"
    path.write_bytes(data)
    with pytest.raises(InputFileError) as info:
        list(iter_jsonl(path))
    assert str(info.value).startswith(str(path)) and message in str(info.value)


def test_a_bom_is_accepted_everywhere_and_a_folder_nowhere(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + jsonl(GOOD, GOOD))
    assert [line for line, _ in iter_jsonl_lines(path)] == [1, 2]
    assert load_records(path) == [GOOD, GOOD]
    with pytest.raises(InputFileError, match="is a folder, not a file"):
        load_records(tmp_path)
    with pytest.raises(InputFileError, match="is a folder, not a file"):
        list(iter_jsonl(tmp_path))


@pytest.mark.parametrize("row,reason", [
    ({**GOOD, "input": ["not", "text"]}, "needs string fields"),
    ({**GOOD, "input": None}, "needs string fields"),
    ({"instruction": "a\ud800", "output": "x"}, "lone_surrogate"),
])
def test_training_data_needs_text_fields(tmp_path, row, reason):
    path = tmp_path / "train.jsonl"
    path.write_bytes(jsonl(GOOD) + json.dumps(row).encode() + b"\n")
    with pytest.raises(InputFileError, match=rf"train.jsonl:2: unusable record \({reason}"):
        load_records(path)


# --- configuration ---------------------------------------------------------------------------

@pytest.mark.parametrize("override,message", [
    ("augment.epochs=[1,", "value is not valid YAML"),
    ("augment.epochs.deeper=1", "augment.epochs is a value, not a section"),
    ("augment.epochs=true", "augment.epochs: Input should be a valid integer"),
    ("augment.epochs=2.0", "augment.epochs: Input should be a valid integer"),
    ("augment.seed=-1", "augment.seed: Input should be greater than or equal to 0"),
    ("train.seed=4294967296", "train.seed: Input should be less than 4294967296"),
    ("augment.epochs", "is not of the form section.key=value"),
    ("augment..epochs=2", "is not of the form section.key=value"),
])
def test_bad_overrides_are_config_errors(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_params("params.yaml", [override])


def test_params_files(tmp_path):
    assert load_params("params.yaml", ["train.learning_rate=1e-4"]).train.learning_rate == 1e-4
    (tmp_path / "list.yaml").write_text("- augment\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_params(tmp_path / "list.yaml")
    with pytest.raises(ConfigError, match="no such params file"):
        load_params(tmp_path / "missing.yaml")
    (tmp_path / "float.yaml").write_text("train:\n  learning_rate: 3e-4\n")
    assert load_params(tmp_path / "float.yaml").train.learning_rate == 3e-4


# --- the CLI's top level ---------------------------------------------------------------------

def test_cli_config_errors_are_one_line(tmp_path):
    assert_one_line_failure(*run_cli("split", "-S", "split.seed=true")[::2], 2, "split.seed")
    assert_one_line_failure(*run_cli("augment", "--params", str(tmp_path / "missing.yaml"))[::2], 2, "no such params file")
    assert_one_line_failure(*run_cli("verify", str(tmp_path), "--source", str(tmp_path))[::2], 2, "is a folder")


def test_empty_samples_and_an_output_that_is_a_folder(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "records.jsonl").write_bytes(jsonl(GOOD, {**GOOD, "output": "Red."}))
    assert_one_line_failure(*run_cli("stats", str(tmp_path / "empty.jsonl"))[::2], 2, "holds no mosaic samples")
    (tmp_path / "taken").mkdir()
    code, _, err = run_cli("split", str(tmp_path / "records.jsonl"), "-o", str(tmp_path), "-S", "split.heldout_fraction=0.5")
    assert code == 0, err
    (tmp_path / "train.jsonl").unlink()
    (tmp_path / "train.jsonl").mkdir()  # the output path is now a folder
    assert_one_line_failure(*run_cli("split", str(tmp_path / "records.jsonl"), "-o", str(tmp_path))[::2], 1,
                            f"error: {tmp_path / 'train.jsonl'}: is a folder (a file was needed here)")
    assert_one_line_failure(*run_cli("split", str(tmp_path / "records.jsonl"), "-o", str(tmp_path / "records.jsonl" / "x"))[::2],
                            1, "a part of this path is a file, not a folder")


@pytest.fixture
def failing_command(monkeypatch):
    """The real `main`, with an app whose one command raises what the test gives it."""
    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    raised: list[BaseException] = []

    @app.command("train")
    def train() -> None:
        raise raised[0]

    @app.command("other")
    def other() -> None:
        raise raised[0]

    monkeypatch.setattr(cli_module, "app", app)
    monkeypatch.delenv(cli_module.DEBUG_ENV, raising=False)
    return raised


def test_ctrl_c_says_where_it_stopped_and_how_to_resume(failing_command):
    failing_command.append(KeyboardInterrupt())
    code, _, err = run_cli("train")
    assert code == 130 and "Traceback" not in err
    assert "interrupted: `mosaic-it train` stopped before it finished" in err
    assert "training resumes from its last checkpoint" in err


@pytest.mark.parametrize("exc,code,line", [
    (IsADirectoryError(21, "Is a directory", "runs/out.jsonl"), 1, "error: runs/out.jsonl: is a folder (a file was needed here)"),
    (PermissionError(13, "Permission denied", "runs/x.tmp", None, "runs/x"), 1, "error: runs/x: Permission denied"),
    (OSError(28, "No space left on device"), 1, "error: No space left on device"),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), 2, "error: text that is not valid UTF-8"),
    (json.JSONDecodeError("Expecting value", "x\ny", 2), 2, "error: not valid JSON at line 2: Expecting value"),
    (ValueError("something odd\nsecond line"), 1, "internal error: ValueError: something odd"),
])
def test_errors_reaching_the_top_are_one_line(failing_command, exc, code, line):
    failing_command.append(exc)
    got, _, err = run_cli("other")
    assert got == code and err.splitlines()[-1].startswith(line) and "Traceback" not in err


def test_debug_shows_the_traceback_of_a_bug(failing_command, monkeypatch):
    failing_command.append(ZeroDivisionError("a bug"))
    monkeypatch.setenv(cli_module.DEBUG_ENV, "1")
    with pytest.raises(ZeroDivisionError):
        run_cli("other")


def test_messages_mask_url_secrets(failing_command):
    failing_command.append(OSError("cannot reach https://bob:hunter2@judge.example/v1?token=abc"))
    _, _, err = run_cli("other")
    assert "hunter2" not in err and "abc" not in err and "https://***@judge.example/v1?token=***" in err


# --- property: whatever the bytes, every data-reading command ends cleanly --------------------

texts = st.one_of(st.text(max_size=12), st.sampled_from(["", " ", "a\x00b", "\ud800", "x\udfff", "caf\u00e9 \U0001f600"]))
values = st.one_of(texts, texts, st.none(), st.integers(), st.booleans(), st.lists(st.integers(), max_size=2))
records = st.one_of(
    st.fixed_dictionaries({"instruction": st.sampled_from(["Say hi.", "List two fruits.", "Add 2 and 3."]),
                           "output": st.sampled_from(["Hi.", "Apple, pear.", "5"])}, optional={"input": values}),
    st.fixed_dictionaries({}, optional={"instruction": values, "input": values, "output": values}),
    st.integers(), st.lists(texts, max_size=2),
)
lines = st.one_of(records.map(json.dumps).map(str.encode), records.map(json.dumps).map(str.encode),
                  st.binary(max_size=12).filter(lambda b: b"\n" not in b))
prefixes = st.sampled_from([b"", b"", b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\x1f\x8b\x08"])


def assert_clean_exit(code: int, err: str, data: Path, allowed: tuple[int, ...]) -> None:
    """An allowed exit; a failure names the input file (a crash caught at the top level would not)."""
    assert code in allowed and "Traceback" not in err and "internal error" not in err, err
    if code == 2:
        assert [line for line in err.splitlines() if line.startswith("error: ")][-1].startswith(f"error: {data}"), err


CLEAN_LINES = [json.dumps(r).encode() for r in (GOOD, {**GOOD, "output": "Red."}, {**GOOD, "instruction": "Say hi."})]


@pytest.mark.slow
@example(prefix=b"\xef\xbb\xbf", body=CLEAN_LINES)  # the path where augment succeeds and verify runs
@example(prefix=b"", body=[*CLEAN_LINES, json.dumps({"instruction": "a\ud800", "output": "x"}).encode()])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(prefix=prefixes, body=st.lists(lines, min_size=0, max_size=8))
def test_every_data_command_exits_0_1_or_2_without_a_traceback(tmp_path_factory, prefix, body):
    tmp = tmp_path_factory.mktemp("hostile")
    data = tmp / "data.jsonl"
    data.write_bytes(prefix + b"\n".join(body) + b"\n")
    seen = b"\n".join(body) if prefix == b"\xef\xbb\xbf" else prefix + b"\n".join(body)
    expected = len([line for line in seen.split(b"\n") if line.strip()])
    if seen.strip().startswith(b"["):  # read as one JSON array: its elements are the records
        with contextlib.suppress(ValueError):
            expected = len(json.loads(seen))

    code, _, err = run_cli("validate", str(data), "-o", str(tmp / "v"), "-S", "validate.max_rejected_fraction=1.0")
    assert_clean_exit(code, err, data, (0, 2))
    if code == 0:  # every record in exactly one of valid/rejected
        valid = json.loads((tmp / "v" / "valid_positions.json").read_text())
        rejected = [row["position"] for row in iter_jsonl(tmp / "v" / "rejected.jsonl")]
        assert sorted(valid + rejected) == list(range(expected))
        assert all(row["reasons"] for row in iter_jsonl(tmp / "v" / "rejected.jsonl"))

    samples = tmp / "aug" / "samples.jsonl"
    for args in (("split", str(data), "-o", str(tmp / "s")),
                 ("augment", str(data), "--output", str(samples), "--stats-dir", str(tmp / "aug" / "st"), "--epochs", "1"),
                 ("verify", str(data), "--source", str(data)),
                 ("stats", str(data), "--out-dir", str(tmp / "st"))):
        code, _, err = run_cli(*args)
        assert_clean_exit(code, err, data, (0, 1, 2) if args[0] == "verify" else (0, 2))
        if args[0] == "augment" and code == 0:  # what augment writes, verify passes and stats reads
            assert run_cli("verify", str(samples), "--source", str(data))[0] == 0
            assert run_cli("stats", str(samples), "--out-dir", str(tmp / "st2"))[0] == 0


@pytest.mark.parametrize("text,message", [("[1, 2]", "expected a JSON object of metrics"), ("{", "not valid JSON")])
def test_compare_refuses_metrics_of_the_wrong_shape(tmp_path, text, message):
    from mosaic_it.evaluate.compare import read_metrics

    (tmp_path / "metrics.json").write_text(text)
    with pytest.raises(InputFileError, match=message):
        read_metrics(tmp_path / "metrics.json", True)


@pytest.mark.slow
def test_augment_without_a_sample_fails_and_keeps_the_old_output(tmp_path):
    long = {**GOOD, "output": "word " * 200}
    (tmp_path / "long.jsonl").write_bytes(jsonl(long, {**long, "instruction": "Another."}))
    out = tmp_path / "samples.jsonl"
    out.write_text("previous output\n")
    code, _, err = run_cli("augment", str(tmp_path / "long.jsonl"), "--output", str(out), "--max-tokens", "16",
                           "--stats-dir", str(tmp_path / "stats"))
    assert_one_line_failure(code, err, 2, "no mosaic sample fits augment.max_tokens=16 (each of the 2 records alone exceeds it)")
    assert out.read_text() == "previous output\n" and sorted(p.name for p in tmp_path.iterdir()) == ["long.jsonl", "samples.jsonl"]
    (tmp_path / "empty.jsonl").write_text("\n")
    code, _, err = run_cli("verify", str(tmp_path / "empty.jsonl"), "--source", str(tmp_path / "long.jsonl"))
    assert_one_line_failure(code, err, 2, "empty.jsonl: holds no mosaic samples")


def test_a_full_disk_is_one_line_naming_the_output(tmp_path):
    import os
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        (tmp_path / "big.jsonl").write_bytes(jsonl(*({**GOOD, "output": f"{i} " + "x" * 200} for i in range(600))))
        code, _, err = run_cli("split", str(tmp_path / "big.jsonl"), "-o", str(disk / "split"))
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)
    assert_one_line_failure(code, err, 1, f"error: {disk / 'split'}/", ": No space left on device")


@pytest.mark.slow
def test_a_real_sigint_stops_with_one_line_and_exit_130(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    big = tmp_path / "big.jsonl"
    big.write_bytes(jsonl(*({**GOOD, "output": f"Answer number {i}."} for i in range(40000))))
    # Ctrl-C's handler as a terminal's shell leaves it: a test run started in the background (`cmd &`)
    # passes SIGINT on ignored, and Python then installs none, so the signal would never arrive.
    command = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
               "from mosaic_it.cli import main; main()")
    proc = subprocess.Popen([sys.executable, "-c", command, "validate", str(big), "-o", str(tmp_path / "out")],
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seen = ""
    while "validate" not in seen and proc.poll() is None:  # the command has started its work
        seen += proc.stderr.read(1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    err = seen + proc.stderr.read()
    assert proc.wait(60) == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("interrupted: `mosaic-it validate` stopped before it finished")
    assert not (tmp_path / "out" / "valid.jsonl").exists()  # nothing half-written
