"""Byte-level runs (`--bytes`) and three-part splits (`--split`), end to end on small texts."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import charrnn
from charrnn.data.dataset import prepare_data, run_part
from charrnn.data.splits import Split
from charrnn.data.vocab import Vocab
from charrnn.errors import CharRNNError
from charrnn.runs.metrics import read_metrics
from charrnn.runs.rundir import RunDir

from conftest import run_main, tiny_config

QUIET = open(os.devnull, "w")


def train_tiny(text: Path, out: Path, **overrides) -> Path:
    charrnn.train(tiny_config(text, out, **{"max_steps": 20, **overrides}), stream=QUIET)
    return out


@pytest.fixture(scope="module")
def odd_bytes(tmp_path_factory, anna_50k) -> Path:
    """Anna with CRLF line ends and a few bytes that are not UTF-8."""
    raw = anna_50k.read_bytes()[:30_000].replace(b"\n", b"\r\n")
    path = tmp_path_factory.mktemp("bytes") / "odd.txt"
    path.write_bytes(raw[:10_000] + b"\xff\xfe\x80 broken, caf\xc3\xa9 " + raw[10_000:])
    return path


@pytest.fixture(scope="module")
def byte_run(tmp_path_factory, odd_bytes) -> Path:
    return train_tiny(odd_bytes, tmp_path_factory.mktemp("runs") / "bytes", bytes=True)


def test_a_byte_run_keeps_every_byte_crlf_and_invalid_utf8_included(odd_bytes, byte_run):
    config = charrnn.TrainConfig.from_json(RunDir(byte_run).read("")["train"])
    data = prepare_data(config)
    whole = np.concatenate([data.train_ids, data.val_ids])
    assert data.vocab.byte_level and "\r" in data.vocab.chars and "\xff" in data.vocab.chars
    assert data.vocab.to_bytes(data.vocab.decode(whole)) == odd_bytes.read_bytes()
    with pytest.raises(CharRNNError, match="not valid utf-8"):  # as text, the same file is refused
        prepare_data(charrnn.TrainConfig(texts=(str(odd_bytes),), out="x"))


def test_byte_and_text_runs_of_an_ascii_lf_file_train_the_same(tmp_path):
    text = tmp_path / "ascii.txt"
    rng = np.random.default_rng(0)
    text.write_text("".join(rng.choice(list("abcde \n"), 20_000)), encoding="ascii")
    as_text = train_tiny(text, tmp_path / "text")
    as_bytes = train_tiny(text, tmp_path / "bytes", bytes=True)
    losses = [[c.val_loss for c in RunDir(run).checkpoints()] for run in (as_text, as_bytes)]
    assert losses[0] == losses[1] and all(loss is not None for loss in losses[0])
    assert Vocab.from_json(RunDir(as_bytes).read("")["vocab"]).byte_level


def test_a_byte_run_samples_its_bytes_as_they_are(byte_run):
    piped = subprocess.run(
        [sys.executable, "-m", "charrnn", "sample", str(byte_run), "--prime", "é", "--length", "300", "--seed", "1"],
        capture_output=True,
        timeout=120,
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.startswith("é".encode()) and len(piped.stdout) == len("é".encode()) + 300 + 1
    shown = run_main("sample", byte_run, "--prime", "The", "--length", "50", "--seed", "1")  # not a byte stream
    assert shown.returncode == 0 and shown.stdout.startswith("The")


def test_eval_score_and_ngram_name_the_symbol(byte_run, odd_bytes):
    evaluated = run_main("eval", byte_run)
    assert evaluated.returncode == 0 and "nats/byte" in evaluated.stdout and "bytes (" in evaluated.stdout
    as_json = json.loads(run_main("eval", byte_run, odd_bytes, "--json").stdout)
    assert as_json["symbol"] == "byte" and as_json["symbols"] == odd_bytes.stat().st_size - 1
    scored = json.loads(run_main("score", byte_run, "--file", odd_bytes, "--json").stdout)
    assert scored["symbol"] == "byte" and scored["chars"] == odd_bytes.stat().st_size - 1
    per_byte = run_main("score", byte_run, "--text", "é!", "--per-char")
    assert per_byte.stdout.splitlines()[1].startswith("b'\\xa9'")  # é's second byte, after its first
    ngram = json.loads(run_main("ngram", byte_run, "--order", "3", "--json").stdout)
    valid = json.loads(run_main("eval", byte_run, "--json").stdout)
    assert ngram["symbol"] == "byte" and ngram["valid"]["symbols"] == valid["symbols"] == 3061


def test_a_byte_run_exports_to_onnx_and_the_example_reads_it(byte_run, tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "bytes.onnx"
    assert run_main("export", byte_run, "--onnx", out).returncode == 0
    example = Path(__file__).resolve().parents[1] / "examples" / "sample_onnx.py"
    done = subprocess.run([sys.executable, example, out, "--prime", "é", "--length", "20", "--seed", "1"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("é")


def test_a_byte_run_serves_text_decoded_from_its_bytes(byte_run):
    from test_serve import start_server, stop_server

    server = start_server(byte_run)
    try:
        with server.client() as client:
            body = {"prime": "é", "max_new_chars": 40, "seed": 1, "stop": ["\r\n"]}
            done = client.post("/generate", json=body)
            assert done.status_code == 200, done.text
            text = done.json()["texts"][0]
            assert isinstance(text, str) and "\r\n" not in text
            assert client.get("/info").json()["symbol"] == "byte"
            completion = client.post("/v1/completions", json={"prompt": "é", "max_tokens": 40, "seed": 1, "echo": True})
            assert completion.json()["choices"][0]["text"].startswith("é")
    finally:
        stop_server(server)


# -- splits -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "length", "bounds"),
    [
        ("0.9,0.05,0.05", 1000, (900, 950, 1000)),
        ("0.8,0.2,0", 1001, (801, 1001, 1001)),
        ("90,5,5", 120, (90, 95, 100)),
        ("1K,0,2k", 5000, (1000, 1000, 3000)),
        ("90M,5M,5M", 100_000_000, (90_000_000, 95_000_000, 100_000_000)),
    ],
)
def test_splits_cover_the_text_in_order_without_overlap(text, length, bounds):
    split = Split.parse(text)
    assert split.bounds(length) == bounds
    ids = np.arange(min(length, 10_000))
    if length <= 10_000:
        train, val, test = split.parts(ids)
        assert np.array_equal(np.concatenate([train, val, test]), ids[: bounds[2]])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0.9,0.1", "TRAIN,VAL,TEST"),
        ("0.9,0.2,0.1", "add up to 1"),
        ("0,0.5,0.5", "the first above 0"),
        ("a,b,c", "TRAIN,VAL,TEST"),
        ("0,5,5", "a training part"),
    ],
)
def test_a_bad_split_is_one_line(text, message, anna_50k, tmp_path):
    with pytest.raises(CharRNNError, match=message):
        Split.parse(text)
    done = run_main("train", anna_50k, "--split", text, "--out", tmp_path / "r")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "--split" in done.stderr
    assert not (tmp_path / "r").exists()


def test_a_split_larger_than_the_text_is_one_line(anna_50k, tmp_path):
    done = run_main("train", anna_50k, "--split", "50K,1K,1K", "--out", tmp_path / "r", "--max-steps", "1")
    assert done.returncode == 1 and "asks for 52,000 symbols but the text has 50,000" in done.stderr


def test_the_test_part_is_read_by_nothing_until_eval_asks_for_it(anna_50k, tmp_path):
    text = anna_50k.read_text(encoding="utf-8")
    cut = len(text) - 5000
    poisoned = tmp_path / "poisoned.txt"
    poisoned.write_text(text[:cut] + "".join(sorted(text[cut:])), encoding="utf-8")  # the same characters, nonsense
    runs = [train_tiny(path, tmp_path / name, split="0.8,0.1,0.1") for path, name in ((anna_50k, "a"), (poisoned, "b"))]
    histories = [[(row["train_loss"], row["val_loss"]) for row in read_metrics(RunDir(r).metrics_file)] for r in runs]
    assert histories[0] == histories[1] and len(histories[0]) == 20  # every step's loss, to the digit
    assert not any(RunDir(r).evals_file.exists() for r in runs)
    tested = [json.loads(run_main("eval", r, "--split", "test", "--json").stdout)["test"] for r in runs]
    assert tested[0]["symbols"] == tested[1]["symbols"] == 4999 and tested[0]["loss"] != tested[1]["loss"]
    assert json.loads(run_main("info", runs[0], "--json").stdout)["test"]["loss"] == tested[0]["loss"]
    listed = run_main("runs", tmp_path).stdout.splitlines()
    assert "test" in listed[0].split() and f"{tested[0]['loss']:.4f}" in listed[1] + listed[2]
    assert run_part(runs[0], "test").tolist() != run_part(runs[1], "test").tolist()


def test_eval_all_parts_and_a_run_without_a_test_part(tiny_run, tmp_path, anna_50k):
    run = train_tiny(anna_50k, tmp_path / "split", split="0.8,0.1,0.1")
    parts = json.loads(run_main("eval", run, "--split", "all", "--json").stdout)
    assert set(parts) == {"train", "valid", "test"} and parts["train"]["symbols"] == 39_999
    missing = run_main("eval", tiny_run, "--split", "test")
    assert missing.returncode == 1 and "has no test part: it was trained without --split" in missing.stderr
    both = run_main("eval", tiny_run, anna_50k, "--split", "test")
    assert both.returncode == 1 and "drop it, or the text files" in both.stderr


def test_resume_keeps_the_split_and_refuses_another(anna_50k, tmp_path):
    run = train_tiny(anna_50k, tmp_path / "r", split="0.8,0.1,0.1", max_steps=10)
    assert run_main("train", "--resume", run, "--max-steps", "20").returncode == 0
    assert charrnn.TrainConfig.from_json(RunDir(run).read("")["train"]).split == "0.8,0.1,0.1"
    assert RunDir(run).checkpoints()[-1].step == 20
    other = run_main("train", "--resume", run, "--split", "0.7,0.2,0.1", "--max-steps", "30")
    assert other.returncode == 1 and "cannot change split (--split) when resuming" in other.stderr


def test_training_a_byte_run_says_bytes(odd_bytes, tmp_path):
    done = run_main("train", odd_bytes, "--bytes", "--out", tmp_path / "b", "--max-steps", "10", "--hidden", "16",
                    "--batch-size", "4", "--seq-len", "16", "--eval-every", "10")  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout + done.stderr
    assert "training bytes" in out and "nats/byte" in out and "nats/char" not in out
