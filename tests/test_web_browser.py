"""charrnn.js in a real browser (Playwright driving Debian's Chromium) on exports served by a plain static
server, `python -m http.server` on a loopback port, as a user would host them: parity with PyTorch and
with the Python sampler for every cell at one and two layers, and the exported page itself."""

import json
import shutil
import subprocess
import sys
import time

import httpx
import pytest
import torch

import charrnn
from charrnn.data.vocab import Vocab
from charrnn.generate.sampler import Sampler
from charrnn.model.network import CharRNN, ModelConfig
from charrnn.web.export import export_web

from conftest import ARTIFACTS, anna_slice, run_main

MODELS = [f"{cell}{layers}" for cell in ("lstm", "gru", "rnn") for layers in (1, 2)] + ["bytes"]
# Ten seeded requests: greedy, temperature, top-k and top-p alone and mixed.
REQUESTS = [
    {"greedy": True},
    {"temperature": 1.0},
    {"temperature": 0.8},
    {"temperature": 1.3},
    {"topK": 5},
    {"topK": 1},
    {"topP": 0.9},
    {"topP": 0.5, "temperature": 1.2},
    {"topK": 10, "topP": 0.8, "temperature": 0.7},
    {"temperature": 0.5, "topK": 20},
]
READY = "(() => { const s = document.querySelector('#status').textContent; return s.startsWith('ready') || s.startsWith('error'); })()"


def python_options(request: dict) -> dict:
    names = {"topK": "top_k", "topP": "top_p"}
    return {names.get(k, k): v for k, v in request.items()}


def random_model(vocab: Vocab, cell: str, layers: int) -> CharRNN:
    torch.manual_seed(layers)
    model = CharRNN(ModelConfig(cell=cell, layers=layers, hidden=32, embed_dim=16).for_vocab(len(vocab)))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3)  # sharper distributions than at initialisation, so that the options matter
    return model.eval()


@pytest.fixture(scope="module")
def text() -> str:
    return anna_slice(20_000)


@pytest.fixture(scope="module")
def site(tmp_path_factory, text, tiny_run):
    """The exports the tests open, each a folder under one root, and the models behind them."""
    root = tmp_path_factory.mktemp("site")
    vocab, models = Vocab.from_text(text), {}
    for name in MODELS[:-1]:
        models[name] = (random_model(vocab, name[:-1], int(name[-1])), vocab)
    utf8 = text.encode().decode("latin-1")
    byte_vocab = Vocab.from_text(utf8, as_bytes=True)
    models["bytes"] = (random_model(byte_vocab, "lstm", 1), byte_vocab)
    for name, (model, vocab) in models.items():
        export_web(model, vocab, root / name, card={"name": name})
    loaded = charrnn.load(tiny_run)
    for mode in ("fp32", "fp16", "int8"):
        _, seen = export_web(loaded.model, loaded.vocab, root / f"tiny-{mode}", mode, {"name": "tiny", "step": 30})
        models[f"tiny-{mode}"] = (seen, loaded.vocab)
    return root, models


@pytest.fixture(scope="module")
def host(site):
    """`python -m http.server` on a loopback port, serving the exports' root."""
    argv = [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", str(site[0])]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N (http://127.0.0.1:N/) ..."
    url = line.split("(")[1].split(")")[0].rstrip("/")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/", timeout=5)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    yield url
    process.terminate()
    process.wait(30)


def open_page(browser, url):
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.wait_for_function(READY, timeout=20_000)
    assert not errors, errors
    return page


def generate_all(page, requests: list[dict]) -> list[str]:
    return page.evaluate(
        "async (rs) => { const out = []; for (const r of rs) out.push(await window.charrnnModel.generate(r)); return out; }",
        requests,
    )


@pytest.mark.parametrize("name", MODELS)
def test_the_browser_matches_pytorch_and_the_python_sampler(browser, site, host, text, name):
    model, vocab = site[1][name]
    page = open_page(browser, f"{host}/{name}/")
    assert page.text_content("#status").startswith("ready"), page.text_content("#status")
    window = vocab.symbols(text[1000:1300])  # 300 characters (for the byte model, their bytes)
    got = page.evaluate("(t) => window.charrnnModel.logProbs(t)", text[1000:1300])
    ids = torch.as_tensor(vocab.encode(window).astype("int64"))[None]
    with torch.inference_mode():
        logits, _ = model(ids[:, :-1])
    want = torch.log_softmax(logits.double(), -1)[0].gather(1, ids[0, 1:, None])[:, 0]
    assert len(got) == len(window) - 1 and (torch.tensor(got) - want).abs().max() < 1e-4

    sampler, prime = Sampler(model, vocab), "The "
    requests = [{"prime": prime, "length": 300, "seed": seed, **r} for seed, r in enumerate(REQUESTS)]
    got = generate_all(page, requests)
    for request, text_got in zip(requests, got, strict=True):
        options = python_options({k: v for k, v in request.items() if k not in ("prime", "length", "seed")})
        want = vocab.readable(sampler.generate(vocab.symbols(prime), 300, seed=request["seed"], **options))
        assert text_got == want, (request, text_got[:60], want[:60])
    page.close()


def test_stop_strings_end_a_sample_as_in_python(browser, site, host):
    model, vocab = site[1]["lstm2"]
    sampler = Sampler(model, vocab)
    whole = sampler.generate("The ", 300, seed=4, temperature=0.9)
    stops = [[whole[120:123]], [whole[40:42], "never-seen"], ["never-seen"], [whole[0]]]
    page = open_page(browser, f"{host}/lstm2/")
    got = generate_all(
        page, [{"prime": "The ", "length": 300, "seed": 4, "temperature": 0.9, "stop": s} for s in stops]
    )
    want = [sampler.generate("The ", 300, seed=4, temperature=0.9, stop=s) for s in stops]
    assert got == want and len(got[0]) <= 120 and got[2] == whole and got[3] == ""
    page.close()


def test_a_seeded_sample_is_what_charrnn_sample_prints(browser, site, host, tiny_run):
    page = open_page(browser, f"{host}/tiny-fp32/")
    for seed in (1, 2):
        got = generate_all(page, [{"prime": "The ", "length": 300, "seed": seed, "temperature": 0.8, "topK": 10}])[0]
        done = run_main(
            "sample", tiny_run, "--prime", "The ", "--length", 300, "--seed", seed, "--temperature", 0.8, "--top-k", 10
        )
        assert done.returncode == 0 and done.stdout == "The " + got + "\n"
    page.close()


def test_the_module_api_state_feed_step_probabilities_and_its_errors(browser, site, host):
    model, vocab = site[1]["gru2"]
    page = open_page(browser, f"{host}/gru2/")
    result = page.evaluate("""async () => {
        const m = window.charrnnModel, errors = [];
        await m.reset("The ");
        const saved = m.state;
        const first = await m.probabilities();
        await m.feed("man");
        const after = await m.probabilities();
        m.state = saved;
        const again = await m.probabilities();
        const drawn = await m.step({ seed: 3, temperature: 0.9 });
        for (const bad of [{ temperature: -1 }, { topP: 0 }, { topK: 1.5 }, { colour: "red" }, { length: -2 }, { prime: "\\u0394\\u0394" }])
          await m.generate(bad).catch((e) => errors.push(e.message));
        await m.setState({ h: [[1]] }).catch((e) => errors.push(e.message));
        let read = 0;
        for await (const c of m.stream({ length: 1000000 })) if (++read === 100) break; // cancels the rest
        const short = await m.generate({ length: 20, seed: 1 });
        return { first: Array.from(first), after: Array.from(after), again: Array.from(again), drawn,
                 vocab: m.vocab.length, errors, stateLayers: saved.h.length, short };
    }""")
    ids = torch.as_tensor(vocab.encode("\nThe man").astype("int64"))[None]
    with torch.inference_mode():
        logits, _ = model(ids)
    want = torch.softmax(logits[0].double(), -1)
    assert (torch.tensor(result["first"]) - want[4]).abs().max() < 1e-5
    assert (torch.tensor(result["after"]) - want[7]).abs().max() < 1e-5
    assert result["again"] == result["first"] and result["drawn"] in vocab.chars
    assert result["vocab"] == len(vocab) and result["stateLayers"] == 2
    assert result["short"] == Sampler(model, vocab).generate("", 20, seed=1)  # the early break cancelled the rest
    assert len(result["errors"]) == 7 and all("\n" not in e and len(e) < 300 for e in result["errors"]), result[
        "errors"
    ]
    assert (
        "temperature" in result["errors"][0] and "colour" in result["errors"][3] and "vocabulary" in result["errors"][5]
    )
    page.close()


@pytest.mark.parametrize("mode", ["fp16", "int8"])
def test_quantised_exports_load_check_their_own_golden_vectors_and_sample_their_weights(browser, site, host, mode):
    model, vocab = site[1][f"tiny-{mode}"]
    page = open_page(browser, f"{host}/tiny-{mode}/")
    assert page.text_content("#status").startswith("ready")
    assert page.evaluate("window.charrnnModel.goldenError") < 1e-4
    got = generate_all(page, [{"prime": "The ", "length": 200, "seed": 5, "temperature": 0.8}])[0]
    assert got == Sampler(model, vocab).generate("The ", 200, seed=5, temperature=0.8)
    page.close()


def test_the_page_streams_text_and_stop_stops_it(browser, host):
    page = open_page(browser, f"{host}/tiny-fp32/")
    card = page.text_content("#card")
    assert "tiny" in card and "2×32 lstm" in card and "step 30" in card, card
    page.fill("#length", "1000000")
    page.fill("#seed", "1")
    page.click("#generate")
    page.wait_for_function("document.querySelector('#generated').textContent.length > 0")
    first = len(page.text_content("#generated"))
    page.wait_for_function(f"document.querySelector('#generated').textContent.length > {first}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-page.png"), full_page=True)
    page.click("#stop")
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('stopped')")
    count = len(page.text_content("#generated"))
    assert count < 1_000_000
    time.sleep(0.3)
    assert len(page.text_content("#generated")) == count  # nothing arrives after Stop
    page.fill("#length", "50")
    page.click("#generate")  # the model is still usable
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('done: 50 characters')")
    page.close()


def test_a_bad_option_on_the_page_is_one_line(browser, host):
    page = open_page(browser, f"{host}/tiny-fp32/")
    page.fill("#temperature", "-1")
    page.click("#generate")
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('error')")
    status = page.text_content("#status")
    assert "temperature" in status and "\n" not in status and "{" not in status, status
    assert not page.is_disabled("#generate")
    page.close()


@pytest.mark.parametrize("damage", ["weights", "manifest", "golden"])
def test_a_corrupted_export_is_refused_with_one_line_on_the_page(browser, site, host, damage):
    root = site[0]
    broken = root / f"broken-{damage}"
    shutil.copytree(root / "tiny-fp32", broken)
    if damage == "weights":
        data = bytearray((broken / "weights.bin").read_bytes())
        data[len(data) // 2] ^= 0x40
        (broken / "weights.bin").write_bytes(bytes(data))
    elif damage == "manifest":
        text = (broken / "manifest.json").read_text()
        (broken / "manifest.json").write_text(text[: len(text) // 2])
    else:  # consistent files, but vectors this model does not reproduce
        meta = json.loads((broken / "manifest.json").read_text())
        meta["golden"]["log_probs"] = [x - 0.01 for x in meta["golden"]["log_probs"]]
        (broken / "manifest.json").write_text(json.dumps(meta))
    page = open_page(browser, f"{host}/broken-{damage}/")
    status = page.text_content("#status")
    expected = {"weights": "does not match its checksum", "manifest": "not JSON", "golden": "golden"}[damage]
    assert status.startswith("error: ") and expected in status and "\n" not in status, status
    assert page.is_disabled("#generate")
    page.close()


def test_the_single_file_opens_from_disk_and_samples_as_python(browser, site, tmp_path):
    model, vocab = site[1]["rnn2"]
    out, _ = export_web(model, vocab, tmp_path / "one.html", "fp32", single_file=True)
    page = open_page(browser, out.as_uri())
    assert page.text_content("#status").startswith("ready"), page.text_content("#status")
    assert page.evaluate("window.charrnnModel.backend.constructor.name") == "WorkerBackend"
    got = generate_all(page, [{"prime": "The ", "length": 300, "seed": 9, "topP": 0.9}])[0]
    assert got == Sampler(model, vocab).generate("The ", 300, seed=9, top_p=0.9)
    page.fill("#seed", "9")
    page.fill("#top_p", "0.9")
    page.fill("#temperature", "1")
    page.fill("#length", "300")
    page.click("#generate")
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('done')")
    assert page.text_content("#generated") == got
    page.close()
