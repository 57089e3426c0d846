"""Where a model runs and in what arithmetic: the device, autocast's precision, and what this CPU offers.

bf16 autocast on the CPU runs the LSTM through oneDNN, which builds a bf16 LSTM only on processors
with AVX-512 (on an AVX2-only CPU it fails with "could not create a primitive descriptor"). So
`autocast_dtype` asks a probe first, and refuses bf16 for an LSTM where the probe fails, before
anything is created. The probes use zeros only: they draw nothing from torch's generators, since
they may run in the middle of a seeded (resumed) run.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile

import torch

from ..errors import CharRNNError

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def select_device(name: str) -> torch.device:
    """`auto` (CUDA, then Apple's Metal, then the CPU) or a device the user named, checked to exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CharRNNError("--device cuda: no CUDA GPU is available here; use --device cpu")
    if name == "mps" and not _mps_available():
        raise CharRNNError("--device mps: Apple's Metal backend is not available here; use --device cpu")
    return torch.device(name)


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def autocast_dtype(precision: str, device: torch.device, cell: str = "lstm") -> torch.dtype | None:
    """The dtype autocast runs the forward pass in (None: fp32), or a one-line refusal of what cannot run here."""
    dtype = AUTOCAST_DTYPES.get(precision)
    if dtype is None:
        return None
    # oneDNN has no fp16 LSTM, so fp16 is for CUDA alone.
    allowed = ("cuda",) if precision == "fp16" else ("cuda", "cpu")
    if device.type not in allowed:
        raise CharRNNError(
            f"precision {precision} (--precision) runs on {' or '.join(allowed)}, not {device.type}; use fp32"
        )
    if device.type == "cpu" and cell == "lstm" and not cpu_bf16_lstm_available():
        raise CharRNNError(
            f"precision bf16 (--precision): this CPU's oneDNN cannot run a bf16 LSTM (it needs AVX-512; "
            f"oneDNN sees {onednn_isa()}); use --precision fp32"
        )
    return dtype


@functools.cache
def cpu_bf16_lstm_available() -> bool:
    """Whether an LSTM's forward and backward pass run under bf16 autocast on this CPU."""
    weights = [torch.zeros(8, 2, requires_grad=True), torch.zeros(8, 2), torch.zeros(8), torch.zeros(8)]
    try:
        with torch.autocast("cpu", torch.bfloat16):
            # torch.lstm(input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first)
            out, _, _ = torch.lstm(
                torch.zeros(1, 3, 2), (torch.zeros(1, 1, 2),) * 2, weights, True, 1, 0.0, True, False, True
            )
        out.float().sum().backward()
    except RuntimeError:
        return False
    return True


@functools.cache
def onednn_isa() -> str:
    """The instruction set oneDNN dispatches to here (its own words, e.g. "Intel AVX2"), or what torch's
    kernels use where oneDNN does not say. oneDNN reports it only in its verbose header, on stdout."""
    fallback = f"{torch.backends.cpu.get_cpu_capability()} (torch)"
    try:
        with tempfile.TemporaryFile() as capture:
            sys.stdout.flush()
            saved = os.dup(1)
            os.dup2(capture.fileno(), 1)
            try:
                with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                    # torch.ops.mkldnn._linear_pointwise(input, weight, bias, attr, scalars, algorithm)
                    torch.ops.mkldnn._linear_pointwise(torch.zeros(1, 1), torch.zeros(1, 1), None, "none", [], "")
            finally:
                os.dup2(saved, 1)
                os.close(saved)
            capture.seek(0)
            text = capture.read().decode(errors="replace")
    except (AttributeError, RuntimeError, OSError):
        return fallback
    for line in text.splitlines():
        if ",isa:" in line:
            return line.split(",isa:", 1)[1].strip()
    return fallback


def environment() -> dict:
    """What a run's bit-for-bit results depend on besides its flags: saved in run.json."""
    return {"torch": torch.__version__, "cpu_isa": onednn_isa(), "threads": torch.get_num_threads()}
