"""Prepared corpora: `charrnn prepare`, training from the memory-mapped ids, and every bad corpus."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import charrnn
from charrnn.data import prepared as prep
from charrnn.data.corpus import iter_chunks
from charrnn.data.dataset import prepare_data, validation_split

from conftest import run_main, tiny_config

QUIET = open(os.devnull, "w")


def decoded(corpus) -> str:
    opened = prep.open_prepared(corpus)
    return opened.vocab.decode(opened.ids())


def test_round_trip_of_several_files_with_crlf(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_bytes("Первая строка\r\nsecond ☃ line\r\nno newline at the end".encode())
    b.write_bytes(b"another\rfile\n")
    done = run_main("prepare", a, b, "--out", tmp_path / "c")
    assert done.returncode == 0 and "train with: charrnn train" in done.stdout, done.stderr
    assert decoded(tmp_path / "c") == "".join(iter_chunks([a, b]))
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["dtype"] == "uint8" and [s["bytes"] for s in manifest["sources"]] == [a.stat().st_size, 13]


@pytest.mark.parametrize("distinct, dtype", [(300, "uint16"), (70_000, "uint32")])
def test_wide_vocabularies_take_wider_ids(tmp_path, distinct, dtype):
    points = [cp for cp in range(0x21, 0x21 + distinct + 2048) if not 0xD800 <= cp <= 0xDFFF][:distinct]
    text = "".join(map(chr, points)) * 2
    path = tmp_path / "wide.txt"
    path.write_text(text, encoding="utf-8")
    corpus = prep.prepare([path], tmp_path / "c", chunk_chars=4099)
    assert corpus.manifest["dtype"] == dtype and corpus.manifest["vocab_size"] == distinct
    assert corpus.ids().dtype.itemsize == np.dtype(dtype).itemsize and decoded(tmp_path / "c") == text


def test_chunk_edges_inside_multibyte_characters_change_nothing(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(("日本語のテキスト🙂 and ascii\r\n" * 50).encode())
    whole = prep.prepare([path], tmp_path / "a")
    for chunk in (1, 2, 3, 7):
        again = prep.prepare([path], tmp_path / f"c{chunk}", chunk_chars=chunk)
        assert again.manifest["ids_sha256"] == whole.manifest["ids_sha256"]
    assert decoded(tmp_path / "a") == ("日本語のテキスト🙂 and ascii\n" * 50)


def test_training_from_a_prepared_corpus_is_training_from_its_text(anna_50k, tmp_path):
    corpus = prep.prepare([anna_50k], tmp_path / "corpus")
    data = prepare_data(tiny_config(corpus.path, tmp_path / "x"))
    assert isinstance(data.train_ids.base if data.train_ids.base is not None else data.train_ids, np.memmap)
    plain = charrnn.train(tiny_config(anna_50k, tmp_path / "plain", max_steps=12), stream=QUIET)
    mapped = charrnn.train(tiny_config(corpus.path, tmp_path / "mapped", max_steps=12), stream=QUIET)
    assert mapped.train_loss == plain.train_loss and mapped.val_loss == plain.val_loss
    done = run_main("train", "--resume", tmp_path / "mapped", "--max-steps", "14")
    assert done.returncode == 0, done.stderr


def test_prepare_does_not_load_torch(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("hello world\n", encoding="utf-8")
    probe = (
        "import sys\nfrom charrnn.cli import launch\nsys.argv = ['charrnn', 'prepare', sys.argv[1], '--out', sys.argv[2]]\n"
        "try:\n    launch.entry_point()\nexcept SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, text, tmp_path / "c"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip().splitlines()[-1] == "False", done.stderr


def test_an_interrupted_prepare_leaves_nothing_train_would_take(tmp_path, monkeypatch):
    text = tmp_path / "t.txt"
    text.write_text("some text\n" * 100, encoding="utf-8")

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(prep, "_write_ids", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prep.prepare([text], tmp_path / "c")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]


def test_bad_corpora_are_one_line_and_nothing_is_touched(anna_50k, tmp_path):
    corpus = prep.prepare([anna_50k], tmp_path / "good").path
    other = tmp_path / "partial"
    other.mkdir()
    (other / "ids.bin").write_bytes(b"\x00\x01")
    foreign = tmp_path / "foreign"
    prep.prepare([anna_50k], foreign)
    manifest = json.loads((foreign / "manifest.json").read_text())
    (foreign / "manifest.json").write_text(json.dumps({**manifest, "format": 99}))
    short = tmp_path / "short"
    prep.prepare([anna_50k], short)
    with open(short / "ids.bin", "r+b") as f:
        f.truncate(1000)
    cases = [
        (tmp_path / "missing", "no such"),
        (other, "not a prepared corpus"),
        (foreign, "another format"),
        (short, "damaged or truncated"),
    ]
    for path, needle in cases:
        done = run_main("train", path, "--out", tmp_path / "run", "--max-steps", "1")
        assert done.returncode == 1 and needle in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
        assert not (tmp_path / "run").exists()
    assert run_main("prepare", "--verify", corpus).returncode == 0
    ids = corpus / "ids.bin"
    data = bytearray(ids.read_bytes())
    data[10] ^= 1
    ids.write_bytes(bytes(data))
    done = run_main("prepare", "--verify", corpus)
    assert done.returncode == 1 and "does not match its recorded sha256" in done.stderr


def test_a_resume_on_another_corpus_is_refused(anna_50k, tmp_path):
    corpus = prep.prepare([anna_50k], tmp_path / "corpus").path
    charrnn.train(tiny_config(corpus, tmp_path / "run", max_steps=3), stream=QUIET)
    swapped = tmp_path / "text.txt"
    swapped.write_text(anna_50k.read_text(encoding="utf-8")[:40_000] + "☃", encoding="utf-8")
    os.rename(corpus, tmp_path / "old")
    prep.prepare([swapped], corpus)
    before = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    done = run_main("train", "--resume", tmp_path / "run", "--max-steps", "6")
    assert done.returncode == 1 and "vocabulary is not the run's" in done.stderr
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == before


def test_info_describes_a_prepared_corpus(anna_50k, tmp_path):
    prep.prepare([anna_50k], tmp_path / "c")
    info = json.loads(run_main("info", tmp_path / "c", "--json").stdout)
    assert info["chars"] == 50_000 and info["dtype"] == "uint8" and info["sources"][0]["bytes"] > 0


def test_the_validation_tail_is_capped():
    ids = np.arange(1000)
    train, val = validation_split(ids, 0.1, 30)
    assert len(val) == 30 and len(train) == 970 and val[0] == 970
    train, val = validation_split(ids, 0.1, 500)
    assert len(val) == 100


def test_a_separate_validation_text(anna_50k, tmp_path):
    text = anna_50k.read_text(encoding="utf-8")
    (tmp_path / "train.txt").write_text(text, encoding="utf-8")  # it holds every character of the other
    (tmp_path / "val.txt").write_text(text[30_000:], encoding="utf-8")
    config = tiny_config(tmp_path / "train.txt", tmp_path / "r", val_texts=(str(tmp_path / "val.txt"),))
    data = prepare_data(config)
    assert len(data.train_ids) == 50_000 and data.vocab.decode(data.val_ids) == text[30_000:]
    corpus = prep.prepare([tmp_path / "val.txt"], tmp_path / "valcorpus")
    capped = prepare_data(
        tiny_config(tmp_path / "train.txt", tmp_path / "r", val_texts=(str(corpus.path),), val_max_chars=500)
    )
    assert data.vocab.decode(capped.val_ids) == text[-500:]
    (tmp_path / "odd.txt").write_text("☃☃", encoding="utf-8")
    done = run_main("train", tmp_path / "train.txt", "--val-text", tmp_path / "odd.txt", "--out", tmp_path / "x")
    assert done.returncode == 1 and "--val-text" in done.stderr and "'☃'" in done.stderr
    done = run_main("train", tmp_path / "train.txt", "--val-text", tmp_path / "val.txt", "--out", tmp_path / "y",
                    "--batch-size", "8", "--seq-len", "32", "--hidden", "16", "--max-steps", "3")  # fmt: skip
    assert done.returncode == 0 and "20,000 validation" in done.stdout, done.stdout + done.stderr
    assert run_main("train", "--resume", tmp_path / "y", "--max-steps", "4").returncode == 0
