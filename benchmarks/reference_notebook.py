"""The straightforward PyTorch port of the "Anna KaRNNa" notebook a user would write, kept as the
reference that charrnn's training speed is compared against: one-hot input, a fused multi-layer
nn.LSTM with dropout, dropout before a linear output, Adam, global-norm clipping, state carried.

`ReferenceProcess` runs it in a process of its own, as a user's script runs: charrnn changes how its
own process's C library keeps freed memory (`charrnn.training.allocator`), and a reference timed beside it in
the same process would get that for free.

    python benchmarks/reference_notebook.py VOCAB HIDDEN LAYERS BATCH STEPS [--keep-freed-memory]
    (it answers "ready", then each line N on stdin with the median seconds of N steps after a warm-up)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import torch
from torch import nn
from torch.nn import functional as F


class NotebookLSTM(nn.Module):
    def __init__(self, vocab_size: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        self.vocab_size = vocab_size
        self.lstm = nn.LSTM(vocab_size, hidden, layers, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, vocab_size)

    def forward(self, x, state):
        one_hot = F.one_hot(x, self.vocab_size).float()
        out, state = self.lstm(one_hot, state)
        return self.fc(self.dropout(out)), state


class NotebookTrainer:
    """One training step at a time, exactly as the notebook's loop does it."""

    def __init__(
        self, vocab_size: int, hidden: int, layers: int, batch_size: int, lr=1e-3, clip=5.0, dropout=0.5, device="cpu"
    ):
        self.model = NotebookLSTM(vocab_size, hidden, layers, dropout).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.clip = clip
        shape = (layers, batch_size, hidden)
        self.state = (torch.zeros(shape, device=device), torch.zeros(shape, device=device))

    def step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        self.state = tuple(s.detach() for s in self.state)
        self.optimizer.zero_grad()
        logits, self.state = self.model(x, self.state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.optimizer.step()
        return loss.item()


class ReferenceProcess:
    """The port in a fresh process, timed one step at a time on request (after one warm-up step each)."""

    def __init__(self, vocab: int, hidden: int, layers: int, batch: int, steps: int, keep_freed_memory: bool):
        command = [sys.executable, __file__, *(str(n) for n in (vocab, hidden, layers, batch, steps))]
        command += ["--keep-freed-memory"] if keep_freed_memory else []
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        # Wait until it has imported torch and built its model: that start-up must not overlap a timing.
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the reference process exited with {self.process.wait()}")

    def step_seconds(self, repeats: int = 1) -> float:
        """Median seconds of `repeats` steps, after one warm-up step."""
        self.process.stdin.write(f"{repeats}\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError(f"the reference process exited with {self.process.wait()}")
        return float(answer)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def _serve() -> None:
    parser = argparse.ArgumentParser()
    for name in ("vocab", "hidden", "layers", "batch", "steps"):
        parser.add_argument(name, type=int)
    parser.add_argument("--keep-freed-memory", action="store_true")
    args = parser.parse_args()
    if args.keep_freed_memory:
        from charrnn.training.allocator import keep_freed_memory

        keep_freed_memory()
    torch.manual_seed(0)
    trainer = NotebookTrainer(args.vocab, args.hidden, args.layers, args.batch)
    x, y = (torch.randint(0, args.vocab, (args.batch, args.steps)) for _ in range(2))
    print("ready", flush=True)
    for line in sys.stdin:
        trainer.step(x, y)
        times = []
        for _ in range(int(line)):
            start = time.perf_counter()
            trainer.step(x, y)
            times.append(time.perf_counter() - start)
        print(statistics.median(times), flush=True)


if __name__ == "__main__":
    _serve()
