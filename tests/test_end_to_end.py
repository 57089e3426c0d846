"""Train a small model on a slice of Anna Karenina through the CLI, sample it in a new process, resume it."""

import json
import math
from collections import Counter

from charrnn.data.corpus import train_val_split

from conftest import anna_slice, run_cli


def unigram_entropy_nats(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log(n / len(text)) for n in counts.values())


def test_train_sample_resume(tmp_path):
    text = anna_slice(200_000)
    path = tmp_path / "anna200k.txt"
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "run"
    flags = ["--hidden", "128", "--embed-dim", "16", "--batch-size", "16", "--seq-len", "64", "--lr", "0.02"]
    flags += ["--warmup-steps", "5", "--eval-every", "50", "--save-every", "50", "--max-steps", "150"]
    first = run_cli("train", path, "--out", out, *flags)
    assert first.returncode == 0, first.stderr

    resumed = run_cli("train", "--resume", out, "--max-steps", "200")
    assert resumed.returncode == 0, resumed.stderr
    info = json.loads(run_cli("info", out, "--json").stdout)
    assert info["step"] == 200
    losses = [c["val_loss"] for c in info["checkpoints"]]
    unigram = unigram_entropy_nats(train_val_split(text, 0.1)[1])
    assert losses[-1] < losses[0]
    assert info["best_val_loss"] < unigram - 0.35, (info["best_val_loss"], unigram)

    sample = run_cli("sample", out, "--prime", "Far", "--length", "300", "--top-k", "5", "--seed", "1")
    assert sample.returncode == 0, sample.stderr
    generated = sample.stdout[3:-1]
    assert sample.stdout.startswith("Far") and len(generated) == 300
    assert 0.08 < generated.count(" ") / len(generated) < 0.35  # word-like spacing, not noise

    evaluated = json.loads(run_cli("eval", out, path, "--json").stdout)
    assert evaluated["chars"] == len(text) - 1 and evaluated["loss"] < unigram

    # Dynamic evaluation learns from the held-out text as it reads it: it must beat the plain score there.
    held_out = tmp_path / "held_out.txt"
    held_out.write_text(train_val_split(text, 0.1)[1], encoding="utf-8")
    plain = json.loads(run_cli("eval", out, held_out, "--json").stdout)
    dynamic = run_cli("eval", out, held_out, "--dynamic-lr", "0.1")
    assert dynamic.returncode == 0, dynamic.stderr
    assert "dynamic evaluation at lr 0.1" in dynamic.stdout
    assert float(dynamic.stdout.split()[0]) < plain["loss"] - 0.01, (dynamic.stdout, plain)
