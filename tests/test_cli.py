"""The real command line, in subprocesses: commands, output formats, and every bad input a user can give."""

import json
import re
import shutil
import subprocess
import sys

import pytest

from conftest import run_cli, run_main

TINY = ["--hidden", "32", "--embed-dim", "16", "--batch-size", "8", "--seq-len", "32", "--lr", "0.01"]


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_run):
    d = tmp_path_factory.mktemp("inputs")
    (d / "empty.txt").write_bytes(b"")
    (d / "binary.bin").write_bytes(bytes(range(256)) * 10)
    (d / "latin1.txt").write_bytes("good text\nthen café".encode("latin-1"))
    (d / "short.txt").write_text("too short\n")
    (d / "unknown.txt").write_text("text with ☃ snowmen")
    (d / "emptyrun").mkdir()
    foreign = d / "foreign"
    (foreign / "checkpoints").mkdir(parents=True)
    (foreign / "checkpoints" / "step-000001.json").write_text(json.dumps({"program": "other", "step": 1}))
    (foreign / "checkpoints" / "step-000001.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    (d / "model.pt").write_bytes(b"PK\x03\x04 a pickle zip")
    (d / "notadir").write_text("a file")
    return d


BAD_INPUTS = [
    # (what, argv with {d} for the inputs folder and {run} for a trained run, expected message)
    ("missing file", "train {d}/nope.txt", "no such file"),
    ("directory", "train {d}", "is a directory"),
    ("empty file", "train {d}/empty.txt", "is empty"),
    ("binary file", "train {d}/binary.bin", "binary"),
    ("not UTF-8", "train {d}/latin1.txt", "not valid utf-8 at byte 18 .line 2, column 9.*--encoding"),
    ("too short", "train {d}/short.txt", "text too short.*need"),
    ("no room for validation", "train {d}/short.txt --batch-size 1 --seq-len 2", "too short for its validation split"),
    ("seq-len 0", "train {d}/short.txt --seq-len 0", "--seq-len\\) must be positive"),
    ("batch-size negative", "train {d}/short.txt --batch-size -4", "--batch-size\\) must be positive"),
    ("lr 0", "train {d}/short.txt --lr 0", "--lr\\) must be positive"),
    ("dropout 1", "train {d}/short.txt --dropout 1", "--dropout\\) must be in"),
    ("weight-drop 1", "train {d}/short.txt --weight-drop 1", "--weight-drop\\) must be in"),
    ("hidden 0", "train {d}/short.txt --hidden 0", "--hidden\\) must be positive"),
    ("layers 0", "train {d}/short.txt --layers 0", "--layers\\) must be positive"),
    ("unknown cell", "train {d}/short.txt --cell transformer", "invalid choice"),
    ("nonsense flag", "train {d}/short.txt --frobnicate", "unrecognized arguments"),
    ("bad duration", "train {d}/short.txt --time-budget soon", "invalid duration"),
    ("bad device", "train {d}/short.txt --device tpu", "unknown device \\(--device\\)"),
    ("bad precision", "train {d}/short.txt --precision fp8", "argument --precision: invalid choice"),
    (
        "fp16 on a cpu",
        "train {anna} --out {d}/fp16 --precision fp16 --device cpu",
        "fp16 \\(--precision\\) runs on cuda, not cpu",
    ),
    ("no text", "train", "give one or more text files"),
    ("unwritable out", "train {anna} --out {d}/notadir/run --max-steps 1", "cannot create output directory"),
    ("resume nothing", "train --resume {d}/emptyrun", "not a charrnn run directory .no run.json"),
    ("negative length", "sample {run} --length -5", "--length\\) must not be negative"),
    ("temperature", "sample {run} --temperature -1", "--temperature\\) must be in \\[0, 100\\], got -1"),
    ("top-p 0", "sample {run} --top-p 0", "--top-p\\) must be in"),
    ("top-p 1.5", "sample {run} --top-p 1.5", "--top-p\\) must be in"),
    ("top-k", "sample {run} --top-k -1", "--top-k\\) must not be negative"),
    ("num-samples", "sample {run} --num-samples 0", "--num-samples\\) must be positive"),
    ("unknown prime", "sample {run} --prime Snow☃man", "not in the model's vocabulary: '☃'"),
    ("bad --checkpoint", "sample {run} --checkpoint 999", "no checkpoint at step 999"),
    ("no checkpoint", "sample {d}/emptyrun", "no checkpoint found"),
    ("foreign run", "sample {d}/foreign", "no checkpoint found"),
    ("foreign checkpoint", "sample {d}/foreign/checkpoints/step-000001.safetensors", "another program"),
    ("pickle file", "sample {d}/model.pt", "not a charrnn checkpoint"),
    ("missing run", "sample {d}/nowhere", "no such run directory"),
    ("eval missing file", "eval {run} {d}/nope.txt", "nope.txt: no such file"),
    ("eval unknown chars", "eval {run} {d}/unknown.txt", "not in the model's vocabulary: '☃'"),
    ("eval too short", "eval {run} {d}/oneline.txt", "too short to evaluate"),
    ("eval dynamic too short", "eval {run} {d}/oneline.txt --dynamic-lr 0.1", "too short to evaluate"),
    ("eval negative --dynamic-lr", "eval {run} {anna} --dynamic-lr -1", "--dynamic-lr\\) must not be negative"),
    ("eval --dynamic-lr word", "eval {run} {anna} --dynamic-lr fast", "invalid float value"),
    ("info not a run", "info {d}/emptyrun", "not a charrnn run directory"),
    ("serve port past 65535", "serve {run} --port 99999", "port \\(--port\\) must be in 0..65535, got 99999"),
    ("reset-rate 1", "train {d}/short.txt --reset-rate 1", "--reset-rate\\) must be in \\[0, 1\\)"),
    ("save-interval words", "train {d}/short.txt --save-interval often", "invalid duration"),
]


def test_bad_input_from_the_real_command_is_one_line(files, tiny_run):
    """The checks below call `main` in this process; these go through the installed command itself."""
    for argv, message in [
        ("train {d}/nope.txt", "no such file"),
        ("train {d}/short.txt --frobnicate", "unrecognized arguments"),
        ("sample {run} --prime Snow☃man", "not in the model's vocabulary"),
    ]:
        result = run_cli(*argv.format(d=files, run=tiny_run).split())
        assert result.returncode in (1, 2) and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr


@pytest.mark.parametrize("what, argv, message", BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_gets_one_line_and_a_nonzero_exit(files, tiny_run, anna_50k, what, argv, message):
    (files / "oneline.txt").write_text("a")
    before = sorted(p.name for p in tiny_run.rglob("*"))
    args = argv.format(d=files, run=tiny_run, anna=anna_50k).split()
    result = run_main(*args, cwd=files)
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("charrnn: error:")

    assert re.search(message, lines[0]), lines[0]
    assert sorted(p.name for p in tiny_run.rglob("*")) == before  # nothing saved was touched


def test_sample_streams_the_prime_and_new_text(tiny_run):
    result = run_cli("sample", tiny_run, "--prime", "Far", "--length", "80", "--top-k", "5", "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Far") and len(result.stdout) == 3 + 80 + 1
    again = run_main("sample", tiny_run, "--prime", "Far", "--length", "80", "--top-k", "5", "--seed", "3")
    assert again.stdout == result.stdout


def test_sample_into_a_closed_pipe_is_quiet(tiny_run):
    result = subprocess.run(
        f"{sys.executable} -m charrnn sample {tiny_run} --length 20000 | head -c 10",
        shell=True,
        capture_output=True,
        text=True,
    )
    assert len(result.stdout) == 10 and result.stderr == ""


def test_sample_several_at_once(tiny_run):
    result = run_main("sample", tiny_run, "--num-samples", "3", "--length", "20", "--prime", "A", "--seed", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("--- sample") == 3


def test_eval_json(tiny_run, anna_50k):
    result = run_main("eval", tiny_run, anna_50k, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (
        set(report) == {"loss", "bpc", "chars", "symbols", "symbol"} and report["chars"] == report["symbols"] == 49_999
    )
    assert report["symbol"] == "char"
    assert 1.0 < report["loss"] < 4.0
    control = json.loads(run_main("eval", tiny_run, anna_50k, "--json", "--dynamic-lr", "0").stdout)
    assert control["dynamic_lr"] == 0 and control["chars"] == 49_999
    assert control["loss"] == pytest.approx(report["loss"], abs=0.02)  # one stream, nothing learned: near plain


def test_info_json_has_the_keys_scripts_rely_on(tiny_run):
    result = run_main("info", tiny_run, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert {"config", "step", "params", "vocab_size", "best_val_loss", "checkpoints"} <= set(info)
    assert info["step"] == 30 and info["config"]["batch_size"] == 8 and info["config"]["hidden"] == 32
    assert info["config"]["seq_len"] == 32 and info["config"]["max_steps"] == 30
    assert [c["step"] for c in info["checkpoints"]] == [10, 20, 30]
    assert info["best_val_loss"] == min(c["val_loss"] for c in info["checkpoints"])
    assert run_main("info", tiny_run).returncode == 0


def test_train_cli_then_resume_with_a_new_stop(tmp_path, anna_50k):
    out = tmp_path / "run"
    first = run_main(
        "train", anna_50k, "--out", out, *TINY, "--max-steps", "12", "--save-every", "6", "--eval-every", "6",
        "--weight-drop", "0.2", "--shift-epochs",
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    saved = json.loads((out / "run.json").read_text())["train"]
    assert saved["model"]["weight_drop"] == 0.2 and saved["shift_epochs"] is True
    assert "parameters" in first.stdout and "chars/s" in first.stdout and "bpc" in first.stdout
    second = run_main("train", "--resume", out, "--max-steps", "18")
    assert second.returncode == 0, second.stderr
    assert "resuming at step 12" in second.stdout
    assert json.loads(run_main("info", out, "--json").stdout)["step"] == 18
    refused = run_main("train", "--resume", out, "--max-steps", "24", "--hidden", "64")
    assert refused.returncode == 1 and "cannot change hidden (--hidden)" in refused.stderr


def test_sample_from_a_copied_checkpoint_file_alone(tmp_path, tiny_run):
    source = next((tiny_run / "checkpoints").glob("step-000030*.safetensors"))
    for suffix in (".safetensors", ".json"):
        shutil.copy(source.with_suffix(suffix), tmp_path / ("alone" + suffix))
    result = run_main("sample", tmp_path / "alone.safetensors", "--length", "10", "--seed", "1")
    assert result.returncode == 0, result.stderr


def test_eval_without_a_text_scores_the_runs_validation_text(tiny_run):
    result = run_main("eval", tiny_run, "--json")
    assert result.returncode == 0, result.stderr
    best = json.loads(run_main("info", tiny_run, "--json").stdout)["best_val_loss"]
    assert json.loads(result.stdout)["loss"] == pytest.approx(best, abs=1e-4)  # what training measured
    one_file = next((tiny_run / "checkpoints").glob("*.safetensors"))  # a checkpoint file names its run too
    assert run_main("eval", one_file, "--json").returncode == 0


def test_eval_without_a_text_needs_the_same_training_text(tmp_path, tiny_run):
    text = tmp_path / "text.txt"
    text.write_text("the training text, line after line\n" * 400)
    run = tmp_path / "run"
    assert run_main("train", text, "--out", run, *TINY, "--max-steps", "2").returncode == 0
    lone = tmp_path / "lone" / "checkpoints"
    lone.mkdir(parents=True)
    for path in (run / "checkpoints").glob("step-000002*"):
        shutil.copy(path, lone / path.name)
    text.write_text("the training text, line after line\n" * 399 + "line after line, the text\n")
    cases = [
        (run, "training text changed since"),
        (next(lone.glob("*.safetensors")), r"not a charrnn run directory .*give the text to evaluate"),
    ]
    for path, message in cases:
        result = run_main("eval", path)
        assert result.returncode == 1 and re.search(message, result.stderr), result.stderr
    text.write_text("the training text, line after line\n" * 399 + "then a new last line\n")
    result = run_main("eval", run)
    assert re.search(r"text changed since .*not in the model's vocabulary: 's', 'w'", result.stderr), result.stderr
    text.unlink()
    result = run_main("eval", run)
    assert result.returncode == 1 and "training text is gone; give the text" in result.stderr, result.stderr


def test_bare_charrnn_prints_help_and_version_is_one_line():
    bare = run_main()
    assert bare.returncode == 0 and "usage: charrnn" in bare.stdout and "train" in bare.stdout
    assert "exits 2" in bare.stdout and "exits 1" in bare.stdout  # the exit codes, said where users look
    version = run_main("--version")
    assert version.returncode == 0 and re.fullmatch(r"charrnn \d+\.\d+\.\d+\n", version.stdout), version.stdout


def test_a_command_line_mistake_exits_2_and_any_other_1(files):
    assert run_main("train", files / "short.txt", "--frobnicate").returncode == 2
    assert run_main("train", files / "short.txt", "--hidden", "0").returncode == 1


def test_val_text_takes_one_file_so_the_training_text_after_it_is_not_swallowed(tmp_path, anna_50k):
    val = tmp_path / "v.txt"
    val.write_text(anna_50k.read_text()[-5000:])
    done = run_main("train", "--val-text", val, anna_50k, "--out", tmp_path / "run", "--max-steps", "2", *TINY)
    assert done.returncode == 0, done.stderr
    saved = json.loads((tmp_path / "run" / "run.json").read_text())["train"]
    assert saved["texts"] == [str(anna_50k.resolve())] and saved["val_texts"] == [str(val.resolve())]


def test_sample_says_a_run_is_training_before_its_first_checkpoint(tmp_path):
    from charrnn.runs.rundir import RunDir

    run = tmp_path / "run"
    run.mkdir()
    with RunDir(run).lock():  # this process holds the run's lock, as a training one does
        done = run_main("sample", run)
    assert done.returncode == 1 and "is training and has no checkpoint yet" in done.stderr, done.stderr
    assert "no checkpoint found" in run_main("sample", run).stderr  # once nobody trains there: not a run


def test_serve_names_every_model_it_serves(monkeypatch, tiny_run, capsys):
    from charrnn.cli import serve as serve_cli
    from charrnn.errors import CharRNNError

    def fail(service):  # as a model that cannot load: the server starts, says what it serves, and stops
        service.error = "not loaded, by the test"
        return False

    monkeypatch.setattr("charrnn.serve.service.Service.load", fail)
    with pytest.raises(CharRNNError, match="by the test"):
        serve_cli.serve(cli_args("serve", tiny_run, "--with", tiny_run, "--port", "0"))
    assert f"serving {tiny_run} with {tiny_run} on http://" in capsys.readouterr().out


def cli_args(*argv):
    from charrnn.cli.main import build_parser

    return build_parser().parse_args(list(map(str, argv)))


def test_info_prints_the_config_over_lines_that_fit(tiny_run):
    lines = run_main("info", tiny_run).stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("config: "))
    block = [lines[start]] + [line for line in lines[start + 1 :] if line.startswith("  ") and "=" in line]
    assert len(block) > 1 and all(len(line) <= 100 for line in block), block
    assert "hidden=32" in " ".join(block)
