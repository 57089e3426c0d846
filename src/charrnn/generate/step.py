"""`RecurrentStep`: one step of a trained model for a batch of rows, a hand-written cell on the weights read
straight from the `nn.LSTM`/`nn.GRU`/`nn.RNN` (numpy for one row on the CPU, torch otherwise, oneDNN's
packed products for wide CPU batches); `EnsembleStep` steps each member and averages their
probabilities. What `Sampler` calls once per generated character."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..model import onednn
from ..model.ensemble import Ensemble, mean_log_probs
from ..model.network import CharRNN, State


class _TorchOps:
    """Array operations for the step on torch tensors (batches, and any device)."""

    xp = torch

    @staticmethod
    def array(tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    @staticmethod
    def matrix(weight: torch.Tensor) -> torch.Tensor:
        """A (in, out) weight as `matmul` takes it."""
        return weight

    @staticmethod
    def matmul(x, weight, out) -> None:
        torch.matmul(x, weight, out=out)

    @staticmethod
    def tanh(x, out) -> None:
        torch.tanh(x, out=out)

    @staticmethod
    def lookup(table, ids: torch.Tensor, out) -> None:
        torch.index_select(table, 0, ids, out=out)


class _CpuBatchOps(_TorchOps):
    """Batches on the CPU: products through oneDNN (several times torch's MKL matmul at these shapes,
    see `onednn`), and tanh as 2*sigmoid(2x) - 1, because torch's CPU tanh is about ten times slower
    than its sigmoid (benchmarks/RESULTS.md)."""

    @staticmethod
    def matrix(weight: torch.Tensor) -> torch.Tensor:
        # Packed once for every batch, not per batch size: packing costs milliseconds, one layout serves
        # every batch of two rows or more as fast as its own, and a fixed one keeps a batch's digits
        # independent of the batches run before it.
        return onednn.pack(weight.t(), _PACKED_ROWS)

    @staticmethod
    def matmul(x, weight, out) -> None:
        out.copy_(onednn.linear(x, weight))

    @staticmethod
    def tanh(x, out) -> None:
        torch.mul(x, 2, out=out)
        torch.sigmoid(out, out=out)
        out.mul_(2).sub_(1)


class _NumpyOps:
    """The same operations in numpy, on arrays sharing the tensors' memory: for one row on the CPU,
    where each operation is tiny and numpy's per-call cost (and its BLAS's one-row products) are
    a fraction of torch's. Not for batches: there torch's products are as fast, and two thread
    pools contending for the cores are far slower (bench_sample.py)."""

    xp = np

    @staticmethod
    def array(tensor: torch.Tensor) -> np.ndarray:
        return tensor.numpy()

    @staticmethod
    def matrix(weight: torch.Tensor) -> np.ndarray:
        return weight.numpy()

    @staticmethod
    def matmul(x, weight, out) -> None:
        np.matmul(x, weight, out=out)

    @staticmethod
    def tanh(x, out) -> None:
        np.tanh(x, out=out)

    @staticmethod
    def lookup(table, ids, out) -> None:
        np.take(table, np.asarray(ids), axis=0, out=out)


# Below this many multiply-adds in a layer's recurrent product (batch x 4 hidden x hidden), the
# extra calls of `_CpuBatchOps` cost more than they save (bench_sample.py's plain-torch columns).
_ONEDNN_MIN_MACS = 2**20
_PACKED_ROWS = 64  # the batch oneDNN lays the weights out for (`_CpuBatchOps` runs batches of 2 rows and more)


def _ops_for(on_cpu: bool, batch: int, hidden: int):
    if not on_cpu:
        return _TorchOps
    if batch == 1:
        return _NumpyOps
    if batch * 4 * hidden * hidden >= _ONEDNN_MIN_MACS and onednn.available():
        return _CpuBatchOps
    return _TorchOps


_MATRICES = ("w_ih", "w_hh", "head_w")  # the weights `matmul` takes; the rest are added or looked up


@dataclass
class _Layer:
    """One layer's working memory for a batch, with the gate views cut once rather than per step."""

    h: Any
    c: Any
    gates: Any
    product: Any
    tmp: Any
    views: tuple


class RecurrentStep:
    """One step of the trained recurrent layers and output head, for a batch of single characters.

    Built for the per-character loop, where the cost is the weights' memory traffic plus the
    number of operations: biases are folded, the first layer's input product is tabulated per
    character (a row lookup), sigmoid gates are computed as tanh(x/2)/2 + 1/2 with the halving
    folded into their weights (so one tanh serves every gate, in numpy as in torch), and every
    buffer and view a step touches is made once per batch, by `start`, so a step allocates nothing.
    The step is written once against functions numpy and torch share (add, multiply, subtract with
    `out=`) plus the ops class's own matmul and tanh, and runs on whichever of `_NumpyOps` (one row on
    the CPU), `_CpuBatchOps` (larger batches on the CPU) or `_TorchOps` (the rest) suits the batch.
    """

    def __init__(self, model: CharRNN):
        rnn, config = model.rnn, model.config
        self.cell, self.hidden, self.layers = config.cell, config.hidden, config.layers
        self.on_cpu = model.device.type == "cpu"
        order, scale = self._gate_layout(config.cell, config.hidden, model.device)
        self.weights: dict[str, list[torch.Tensor]] = {"w_ih": [], "w_hh": [], "b_ih": [], "b_hh": []}
        for i in range(config.layers):
            b_ih, b_hh = getattr(rnn, f"bias_ih_l{i}"), getattr(rnn, f"bias_hh_l{i}")
            if config.cell != "gru":  # the GRU keeps b_hh apart: it sits inside r * (W_hn h + b_hn)
                b_ih, b_hh = b_ih + b_hh, torch.zeros_like(b_hh)
            for name, w in (("w_ih", getattr(rnn, f"weight_ih_l{i}")), ("w_hh", getattr(rnn, f"weight_hh_l{i}"))):
                self.weights[name].append((w[order] * scale[:, None]).t().contiguous())
            self.weights["b_ih"].append(b_ih[order] * scale)
            self.weights["b_hh"].append(b_hh[order] * scale)
        table = torch.addmm(self.weights["b_ih"][0], model.embed.weight, self.weights["w_ih"][0])
        self.weights["table"] = [table]  # (vocab, gates): the first layer's input product per character
        self.weights["head_w"] = [model.head.weight.t().contiguous()]
        self.weights["head_b"] = [model.head.bias.clone()]
        self.gate_width = self.weights["w_hh"][0].shape[1]
        self._weights_as: dict[type, dict] = {}  # the weights as each ops class takes them, made on first use

    @staticmethod
    def _gate_layout(cell: str, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Row order of the gates and their scale: LSTM i,f,g,o -> i,f,o,g; sigmoid gates halved."""
        blocks = {"lstm": [0, 1, 3, 2], "gru": [0, 1, 2], "rnn": [0]}[cell]
        sigmoid_blocks = {"lstm": 3, "gru": 2, "rnn": 0}[cell]
        order = torch.cat([torch.arange(b * n, (b + 1) * n) for b in blocks]).to(device)
        scale = torch.ones(len(blocks) * n, device=device)
        scale[: sigmoid_blocks * n] = 0.5
        return order, scale

    def start(self, state: State) -> dict:
        """Working memory for a batch, starting from a copy of `state` (layers, batch, hidden)."""
        batch, n = state[0].shape[1], self.hidden
        ops = _ops_for(self.on_cpu, batch, n)
        new = state[0].new_empty
        layers = []
        for i in range(self.layers):
            gates = new(batch, self.gate_width)
            c = state[1][i].clone() if self.cell == "lstm" else new(0)
            layers.append(_Layer(state[0][i].clone(), c, gates, new(batch, self.gate_width), new(batch, n), ()))
        logits = new(batch, self.weights["head_w"][0].shape[1])
        arrays = [_Layer(*(ops.array(t) for t in (x.h, x.c, x.gates, x.product, x.tmp)), views=()) for x in layers]
        for layer in arrays:
            g = layer.gates
            if self.cell == "lstm":  # sigmoid part, then i, f, o, g
                layer.views = (g[:, : 3 * n], g[:, :n], g[:, n : 2 * n], g[:, 2 * n : 3 * n], g[:, 3 * n :])
            elif self.cell == "gru":  # sigmoid part (reset, update), reset, update, new; and h's new part
                layer.views = (g[:, : 2 * n], g[:, :n], g[:, n : 2 * n], g[:, 2 * n :])
                layer.views += (layer.product[:, : 2 * n], layer.product[:, 2 * n :])
        return {
            "ops": ops,
            "tensors": layers,
            "layers": arrays,
            "weights": self._weights_for(ops),
            "logits": ops.array(logits),
        }

    def _weights_for(self, ops) -> dict:
        """The weights as `ops` takes them, made once (a server starts a batch whenever a row joins or leaves)."""
        if ops not in self._weights_as:
            self._weights_as[ops] = {
                name: [ops.matrix(w) if name in _MATRICES else ops.array(w) for w in ws]
                for name, ws in self.weights.items()
            }
        return self._weights_as[ops]

    def state(self, buffers: dict) -> State:
        layers = buffers["tensors"]
        if self.cell == "lstm":
            return torch.stack([x.h for x in layers]), torch.stack([x.c for x in layers])
        return (torch.stack([x.h for x in layers]),)

    def __call__(self, ids, buffers: dict):
        """Advance every row by one character; returns the logits buffer (batch, vocab), reused next step,
        as the ops' array (numpy for one row on the CPU, else torch)."""
        ops, w, layers = buffers["ops"], buffers["weights"], buffers["layers"]
        xp = ops.xp
        for i, layer in enumerate(layers):
            if i == 0:
                ops.lookup(w["table"][0], ids, layer.gates)
            else:
                ops.matmul(layers[i - 1].h, w["w_ih"][i], layer.gates)
                xp.add(layer.gates, w["b_ih"][i], out=layer.gates)
            ops.matmul(layer.h, w["w_hh"][i], layer.product)
            if self.cell == "lstm":
                self._lstm(ops, layer)
            elif self.cell == "gru":
                xp.add(layer.product, w["b_hh"][i], out=layer.product)
                self._gru(ops, layer)
            else:
                xp.add(layer.gates, layer.product, out=layer.gates)
                ops.tanh(layer.gates, layer.h)
        ops.matmul(layers[-1].h, w["head_w"][0], buffers["logits"])
        xp.add(buffers["logits"], w["head_b"][0], out=buffers["logits"])
        return buffers["logits"]

    @staticmethod
    def _sigmoid_from_halved(xp, x) -> None:
        """x holds tanh(z/2); make it sigmoid(z) = tanh(z/2)/2 + 1/2."""
        xp.multiply(x, 0.5, out=x)
        xp.add(x, 0.5, out=x)

    def _lstm(self, ops, layer: _Layer) -> None:
        xp = ops.xp
        sig, i, f, o, g = layer.views
        xp.add(layer.gates, layer.product, out=layer.gates)
        ops.tanh(layer.gates, layer.gates)
        self._sigmoid_from_halved(xp, sig)
        xp.multiply(layer.c, f, out=layer.c)  # c = f * c + i * g
        xp.multiply(i, g, out=layer.tmp)
        xp.add(layer.c, layer.tmp, out=layer.c)
        ops.tanh(layer.c, layer.tmp)  # h = o * tanh(c)
        xp.multiply(o, layer.tmp, out=layer.h)

    def _gru(self, ops, layer: _Layer) -> None:
        xp = ops.xp
        sig, r, z, candidate, h_sig, h_new = layer.views
        xp.add(sig, h_sig, out=sig)
        ops.tanh(sig, sig)
        self._sigmoid_from_halved(xp, sig)
        xp.multiply(r, h_new, out=h_new)  # n = tanh(x_n + r * (W_hn h + b_hn))
        xp.add(candidate, h_new, out=candidate)
        ops.tanh(candidate, candidate)
        xp.subtract(layer.h, candidate, out=layer.tmp)  # h' = n + z * (h - n)
        xp.multiply(z, layer.tmp, out=layer.tmp)
        xp.add(candidate, layer.tmp, out=layer.h)


class EnsembleStep:
    """`RecurrentStep` for an `Ensemble`: every member's step, then the log of their mean probabilities."""

    def __init__(self, ensemble: Ensemble):
        self.ensemble = ensemble
        self.steps = [RecurrentStep(member) for member in ensemble.members]

    def start(self, state: State) -> dict:
        parts = self.ensemble.split_state(state)
        members = [step.start(part) for step, part in zip(self.steps, parts, strict=True)]
        # One batch on one device: every member runs numpy (one row on the CPU) or every member torch.
        return {"ops": members[0]["ops"], "members": members}

    def state(self, buffers: dict) -> State:
        return tuple(part for step, b in zip(self.steps, buffers["members"], strict=True) for part in step.state(b))

    def __call__(self, ids, buffers: dict):
        return mean_log_probs([step(ids, b) for step, b in zip(self.steps, buffers["members"], strict=True)])
