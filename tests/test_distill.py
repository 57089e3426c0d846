"""Distillation (`charrnn train --teacher RUN`): the loss against a hand computation, a teacher that is
the model's own copy leaving the plain loss's gradient direction, a teacher with another vocabulary
refused in one line, and a run with teachers resuming bit-for-bit (their states are saved)."""

import copy
import math
import os

import pytest
import torch
from torch.nn import functional as F

import charrnn
from charrnn.model.network import CharRNN, ModelConfig
from charrnn.runs.rundir import resolve_checkpoint
from charrnn.training.distill import distill_loss

from conftest import run_main, tiny_config


def test_the_loss_against_a_hand_computation_on_three_characters():  # KL, so 0 where the model matches
    logits = torch.tensor([[[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]]])
    targets = torch.tensor([[0, 2]])
    soft = torch.tensor([[[0.7, 0.2, 0.1], [0.3, 0.3, 0.4]]])
    mix, temperature = 0.25, 2.0

    def log_softmax(row, t):
        total = sum(math.exp(x / t) for x in row)
        return [x / t - math.log(total) for x in row]

    rows = logits[0].tolist()
    hard = -(log_softmax(rows[0], 1)[0] + log_softmax(rows[1], 1)[2]) / 2
    soft_kl = sum(p * (math.log(p) - q) for row, ps in zip(rows, soft[0].tolist(), strict=True)
                  for p, q in zip(ps, log_softmax(row, temperature), strict=True)) / 2  # fmt: skip
    want = (1 - mix) * hard + mix * temperature**2 * soft_kl
    assert distill_loss(logits, targets, soft, mix, temperature).item() == pytest.approx(want, rel=1e-6)
    assert distill_loss(logits, targets, soft, 0.0, temperature).item() == pytest.approx(hard, rel=1e-6)


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_a_teacher_that_is_the_models_own_copy_leaves_the_plain_gradient_direction(temperature):
    torch.manual_seed(0)
    student = CharRNN(ModelConfig(hidden=12, embed_dim=4, dropout=0.0).for_vocab(7)).train()
    teacher = copy.deepcopy(student).eval()
    ids = torch.randint(0, 7, (3, 11))
    inputs, targets = ids[:, :-1], ids[:, 1:]

    def gradient(loss_of):
        student.zero_grad()
        loss_of(student(inputs)[0]).backward()
        return torch.cat([p.grad.flatten() for p in student.parameters()])

    with torch.no_grad():
        soft = F.softmax(teacher(inputs)[0] / temperature, -1)
    mixed = gradient(lambda logits: distill_loss(logits, targets, soft, 0.6, temperature))
    plain = gradient(lambda logits: F.cross_entropy(logits.reshape(-1, 7), targets.reshape(-1)))
    assert torch.allclose(mixed, 0.4 * plain, atol=1e-6)  # the soft part's gradient vanishes


def test_a_teacher_with_another_vocabulary_is_refused_in_one_line(tiny_run, tmp_path):
    other = tmp_path / "digits.txt"
    other.write_text("0123456789 " * 2000)
    done = run_main("train", other, "--out", tmp_path / "r", "--teacher", tiny_run, "--max-steps", "2")
    assert done.returncode == 1 and "another vocabulary" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def model_tensors(run) -> dict:
    return {k: v for k, v in resolve_checkpoint(run, "latest")[1].items() if not k.startswith("rng.")}


def test_training_with_a_teacher_learns_saves_its_state_and_resumes_bit_for_bit(anna_50k, tiny_run, tmp_path):
    flags = dict(
        teachers=(str(tiny_run),), distill_mix=0.5, distill_temperature=2.0, save_every=10, lr_schedule="constant"
    )
    whole, half = tmp_path / "whole", tmp_path / "half"
    charrnn.train(tiny_config(anna_50k, whole, max_steps=20, **flags), stream=open(os.devnull, "w"))
    charrnn.train(tiny_config(anna_50k, half, max_steps=10, **flags), stream=open(os.devnull, "w"))
    charrnn.resume(half, {"max_steps": 20}, stream=open(os.devnull, "w"))
    a, b = model_tensors(whole), model_tensors(half)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert {"state.0", "state.1", "state.2", "state.3"} <= a.keys()  # the model's h, c, then the teacher's
    plain = tmp_path / "plain"
    charrnn.train(
        tiny_config(anna_50k, plain, max_steps=20, save_every=10, lr_schedule="constant"), stream=open(os.devnull, "w")
    )
    assert not torch.equal(a["model.head.weight"], model_tensors(plain)["model.head.weight"])
