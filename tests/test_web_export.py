"""`charrnn export --web`: the folder, the manifest, the quantised weights and the single file, checked in
Python (the browser's side is tests/test_web_browser.py and tests/web/)."""

import json
import re
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

import charrnn
from charrnn.data.vocab import Vocab
from charrnn.errors import CharRNNError
from charrnn.model.network import CharRNN, ModelConfig
from charrnn.web import export as web_export
from charrnn.web import inline
from charrnn.web.assets import MODULES
from charrnn.web.export import ASSETS, WEIGHTS_FILE, export_web, quantize
from charrnn.web.inline import single_file_html

from conftest import run_main


@pytest.fixture(scope="module")
def tiny(tiny_run):
    loaded = charrnn.load(tiny_run)
    return loaded.model, loaded.vocab


def test_the_folder_holds_the_page_the_module_the_weights_and_a_manifest_that_describes_them(tiny, tmp_path):
    model, vocab = tiny
    out, _ = export_web(model, vocab, tmp_path / "site", card={"name": "tiny"})
    assert sorted(p.name for p in out.iterdir()) == sorted([*ASSETS, WEIGHTS_FILE, "manifest.json"])
    meta = json.loads((out / "manifest.json").read_text())
    blob = (out / WEIGHTS_FILE).read_bytes()
    assert (meta["format"], meta["version"], meta["quantize"]) == ("charrnn-web", 1, "fp32")
    assert meta["weights"] == {"file": WEIGHTS_FILE, "bytes": len(blob), "crc32": zlib.crc32(blob)}
    assert "".join(map(chr, meta["vocab"]["code_points"])) == "".join(vocab.chars)
    assert meta["model"]["cell"] == model.config.cell and meta["card"]["name"] == "tiny"
    for entry, (name, tensor) in zip(meta["tensors"], model.state_dict().items(), strict=True):
        values = np.frombuffer(blob, "<f4", tensor.numel(), entry["offset"]).reshape(tensor.shape)
        assert entry["name"] == name and np.array_equal(values, tensor.numpy())
    golden = meta["golden"]
    assert len(golden["ids"]) == 64 and len(golden["log_probs"]) == 63 and max(golden["log_probs"]) <= 0
    assert meta["options"]["topK"]["type"] == "int" and meta["options"]["topP"]["high"] == 1


@pytest.mark.parametrize("mode, ratio, error", [("fp16", 0.5, 2e-3), ("int8", 0.25, 2e-2)])
def test_quantisation_shrinks_the_matrices_and_its_golden_vectors_are_its_own(mode, ratio, error, tiny):
    model, vocab = tiny
    full, _, _ = quantize(model, "fp32")
    blob, _, seen = quantize(model, mode)
    assert len(blob) < (ratio + 0.1) * len(full)
    for (name, want), got in zip(model.state_dict().items(), seen.state_dict().values(), strict=True):
        scale = want.abs().max() if want.ndim == 1 else want.abs().amax(1, keepdim=True)
        assert ((got - want).abs() <= error * scale + 1e-7).all(), name
    own, plain = web_export.golden(seen, vocab), web_export.golden(model, vocab)
    assert own["log_probs"] != plain["log_probs"]
    assert np.abs(np.array(own["log_probs"]) - plain["log_probs"]).max() < 0.05


def test_every_cell_and_depth_exports(tmp_path, tiny):
    _, vocab = tiny
    for cell in ("lstm", "gru", "rnn"):
        for layers in (1, 3):
            model = CharRNN(ModelConfig(cell=cell, layers=layers, hidden=12, embed_dim=4).for_vocab(len(vocab)))
            out, _ = export_web(model, vocab, tmp_path / f"{cell}{layers}", "int8")
            meta = json.loads((out / "manifest.json").read_text())
            assert len(meta["tensors"]) == len(model.state_dict())


def test_a_byte_level_model_exports_its_vocabulary_as_bytes(tmp_path):
    utf8 = "naïve café — déjà vu\n".encode().decode("latin-1")  # bytes as symbols, as byte-level training reads them
    vocab = Vocab.from_text(utf8, as_bytes=True)
    model = CharRNN(ModelConfig(hidden=8, embed_dim=4).for_vocab(len(vocab)))
    out, _ = export_web(model, vocab, tmp_path / "bytes")
    meta = json.loads((out / "manifest.json").read_text())
    assert meta["vocab"]["symbol"] == "byte" and max(meta["vocab"]["code_points"]) < 256


def test_a_new_export_replaces_an_old_one_and_a_failed_one_leaves_it_whole(tiny, tmp_path, monkeypatch):
    model, vocab = tiny
    out, _ = export_web(model, vocab, tmp_path / "site")
    (out / "extra.txt").write_text("from the old export")
    export_web(model, vocab, out, "fp16")
    assert not (out / "extra.txt").exists() and json.loads((out / "manifest.json").read_text())["quantize"] == "fp16"

    def broken(name):
        raise OSError("disk full")

    monkeypatch.setattr(web_export, "asset_text", broken)
    with pytest.raises(OSError):
        export_web(model, vocab, out, "int8")
    assert json.loads((out / "manifest.json").read_text())["quantize"] == "fp16"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # no half-built folder left behind


def test_a_folder_that_is_not_an_export_is_refused_and_left_alone(tiny, tmp_path):
    model, vocab = tiny
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(CharRNNError, match="not a charrnn web export"):
        export_web(model, vocab, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_the_single_file_holds_every_module_and_nothing_from_outside(tiny, tmp_path):
    model, vocab = tiny
    out, _ = export_web(model, vocab, tmp_path / "m.html", "int8", {"name": "</script><b>"}, single_file=True)
    page = out.read_text()
    assert not re.search(r'(src|href)="(?!data:)', page) and "<style>" in page  # nothing fetched
    assert page.count("data-module=") == len(MODULES) and 'id="charrnn-worker"' in page
    assert page.lower().count("</script") == page.lower().count("<script")  # the card's name did not close one
    meta = json.loads(page.split('id="charrnn-manifest">')[1].split("</script>")[0])
    assert meta["card"]["name"] == "</script><b>"
    with pytest.raises(CharRNNError, match="single-file"):
        export_web(model, vocab, tmp_path / "m.htm", single_file=True)


def test_inlining_refuses_a_module_that_would_close_its_script_element(monkeypatch):
    monkeypatch.setattr(inline, "asset_text", lambda name: "let x = '</SCRIPT>';")
    with pytest.raises(CharRNNError, match="</script"):
        single_file_html({"card": {}}, b"")


def test_the_command_writes_the_folder_and_refuses_nonsense_in_one_line(tiny_run, tmp_path):
    done = run_main("export", tiny_run, "--web", tmp_path / "site", "--quantize", "int8")
    assert done.returncode == 0 and "python -m http.server" in done.stdout, done.stderr
    card = json.loads((tmp_path / "site" / "manifest.json").read_text())["card"]
    assert card["name"] == Path(tiny_run).name and card["step"] == 30 and card["quantize"] == "int8"
    done = run_main("export", tiny_run, "--web", tmp_path / "one.html", "--single-file")
    assert done.returncode == 0 and (tmp_path / "one.html").stat().st_size > 10_000, done.stderr
    for argv, message in [
        (("--web", tmp_path / "folder", "--single-file"), "ending in .html"),
        (("--onnx", tmp_path / "m.onnx", "--quantize", "int8"), "are for --web"),
        (("--web", tmp_path / "x", "--with", tiny_run), "one model"),
        (("--web", tmp_path / "y", "--quantize", "int4"), "invalid choice"),
    ]:
        done = run_main("export", tiny_run, *argv)
        assert done.returncode != 0 and message in done.stderr and len(done.stderr.strip().splitlines()) <= 2, (
            done.stderr
        )
        assert "Traceback" not in done.stderr
    done = run_main("export", tmp_path / "no-such-run", "--web", tmp_path / "z")
    assert done.returncode != 0 and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_the_exported_weights_are_the_models_in_pytorchs_layout(tiny):
    model, _ = tiny
    _, table, seen = quantize(model, "fp32")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), seen.state_dict().values(), strict=True))
    assert [t["offset"] % 4 for t in table] == [0] * len(table)
