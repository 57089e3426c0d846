"""What distillation's teachers cost a training step of the default 1×512 student (batch 32 × 50, anna.txt's
83 characters), with k teachers of the student's own shape, two ways:

- on the fly (what `train --teacher` does): each step runs the teachers forward on the step's windows;
- cached once per epoch: a pass before each epoch runs the teachers over the text in long windows (no
  gradient, 32 streams × 500 characters) into a float16 table, and each step reads its rows.

The cached cost per step is the table's read in the step plus the pass's time per character times the
step's characters (the pass runs once per epoch, the steps cover the epoch once). The variants are
interleaved round by round in one process.

    python benchmarks/bench_distill.py [--teachers 1 3 6] [--rounds 5] [--steps 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from charrnn.data.batches import Batch
from charrnn.model.network import CharRNN, ModelConfig
from charrnn.training.config import TrainConfig
from charrnn.training.distill import Teachers, distill_loss
from charrnn.training.objective import Objective

from common import interleaved_seconds, print_table, save_results

VOCAB, BATCH, STEPS, FILL_STEPS = 83, 32, 50, 500
ANNA_TRAIN_CHARS = 1_786_701


def model(seed: int) -> CharRNN:
    torch.manual_seed(seed)
    return CharRNN(ModelConfig().for_vocab(VOCAB))


def student_step(teachers: Teachers | None, cache: torch.Tensor | None):
    """One step of forward, loss, backward and Adam: plain, with teachers on the fly, or reading `cache`."""
    student = model(0).train()
    config = TrainConfig(distill_mix=0.5, distill_temperature=2.0)
    objective = Objective(config, student, teachers)
    optimizer = torch.optim.Adam(student.parameters(), 1e-3, fused=True)
    ids = torch.randint(0, VOCAB, (BATCH, STEPS + 1))
    batch = Batch(ids[:, :-1], ids[:, 1:], epoch=0, window=1)
    carried = objective.initial_state(BATCH)

    def step():
        if cache is None:
            loss, _ = objective.loss(student, batch, carried)
        else:
            logits, _ = student(batch.inputs, carried)
            soft = cache[: BATCH * STEPS].float().view(BATCH, STEPS, VOCAB)
            loss = distill_loss(logits, batch.targets, soft, 0.5, 2.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def fill_seconds_per_char(teachers: Teachers) -> float:
    """The teachers' pass over long windows, seconds per character of text."""
    ids = torch.randint(0, VOCAB, (BATCH, FILL_STEPS))
    state = teachers.init_state(BATCH)
    teachers.soft_targets(ids, state)  # warm
    start = time.perf_counter()
    soft, _ = teachers.soft_targets(ids, state)
    soft.half()
    return (time.perf_counter() - start) / ids.numel()


def fill_recorder(fills: list[float], teachers: Teachers):
    """What each round ends with: one timing of the teachers' pass, appended to `fills`."""
    return lambda: fills.append(fill_seconds_per_char(teachers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teachers", type=int, nargs="+", default=[1, 3, 6])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="steps timed per variant and round")
    args = parser.parse_args()
    cache = torch.rand(BATCH * STEPS, VOCAB).softmax(-1).half()
    rows = []
    for k in args.teachers:
        teachers = Teachers([model(seed) for seed in range(1, k + 1)], 2.0)
        steps = {"alone": student_step(None, None), "on the fly": student_step(teachers, None)}
        steps["cached"] = student_step(None, cache)
        fills = []
        times = interleaved_seconds(steps, args.rounds, args.steps, fill_recorder(fills, teachers))
        alone, fly, read = (statistics.median(times[n]) for n in ("alone", "on the fly", "cached"))
        fill = statistics.median(fills) * BATCH * STEPS
        rows.append(
            [
                k,
                f"{alone * 1000:.1f}",
                f"{fly * 1000:.1f} ({fly / alone:.2f}×)",
                f"{read * 1000:.1f} + {fill * 1000:.1f} = {(read + fill) * 1000:.1f} ({(read + fill) / alone:.2f}×)",
                f"{statistics.median(fills) * ANNA_TRAIN_CHARS:.0f}",
            ]
        )
    header = ["teachers", "alone, ms/step", "on the fly", "cached: read + fill share", "fill, s per anna.txt epoch"]
    print_table(header, rows, f"median of {args.rounds} interleaved rounds")
    print(f"the float16 table for anna.txt's training text: {ANNA_TRAIN_CHARS * VOCAB * 2 / 1e6:.0f} MB")
    save_results("distill", {"rows": rows})


if __name__ == "__main__":
    main()
