"""Sample from a model exported with `charrnn export RUN --onnx model.onnx`, with onnxruntime and numpy
alone (no torch, no charrnn):

    python examples/sample_onnx.py model.onnx --prime "Far" --length 300 --temperature 0.8 --seed 1

The vocabulary and the architecture come from the file's metadata. The prime runs through the graph
once to warm the state, after the lead-in the metadata names (a line break: where texts start, as
charrnn reads a prime); after that each character is one call with a time axis of one.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import onnxruntime as ort


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--prime", default="")
    parser.add_argument("--length", type=int, default=300)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()

    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    chars, model = json.loads(meta["charrnn.vocab"]), json.loads(meta["charrnn.model"])
    index = {c: i for i, c in enumerate(chars)}
    byte_level = json.loads(meta.get("charrnn.symbol", '"char"')) == "byte"
    # A byte model's vocabulary entries are bytes, each as the character of its value.
    prime = args.prime.encode("utf-8").decode("latin-1") if byte_level else args.prime
    unknown = sorted(set(prime) - set(index))
    if unknown:
        raise SystemExit(f"characters not in the model's vocabulary: {unknown}")
    names = ["h", "c"] if model["cell"] == "lstm" else ["h"]
    state = {n: np.zeros((model["layers"], 1, model["hidden"]), dtype=np.float32) for n in names}
    rng = np.random.default_rng(args.seed)
    read = json.loads(meta.get("charrnn.lead_in", '""')) + prime or chars[0]
    ids = np.array([[index[c] for c in read]], dtype=np.int64)
    out = [prime]
    for _ in range(args.length):
        logits, *new_state = session.run(None, {"ids": ids, **state})
        state = dict(zip(names, new_state, strict=True))
        scaled = logits[0, -1].astype(np.float64) / max(args.temperature, 1e-6)
        probs = np.exp(scaled - scaled.max())
        choice = int(rng.choice(len(chars), p=probs / probs.sum()))
        out.append(chars[choice])
        ids = np.array([[choice]], dtype=np.int64)
    text = "".join(out)
    print(text.encode("latin-1").decode("utf-8", "replace") if byte_level else text)


if __name__ == "__main__":
    main()
