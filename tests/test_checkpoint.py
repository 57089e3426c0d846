import json
import multiprocessing

import pytest
import torch

from charrnn.errors import CharRNNError
from charrnn.model.network import ModelConfig
from charrnn.runs import checkpoint as ckpt
from charrnn.runs.rundir import RunDir, RunLock, resolve_checkpoint

META = {"model": ModelConfig(vocab_size=3, hidden=4, layers=1, embed_dim=2).to_json(), "vocab": ["a", "b", "c"]}


def save(run_dir, step, val_loss=None, keep=100, **extra):
    return RunDir(run_dir).save(
        {"x": torch.full((3,), float(step))}, {"step": step, "val_loss": val_loss, **META, **extra}, keep
    )


def test_save_then_list_and_load(tmp_path):
    save(tmp_path, 10, 2.5)
    save(tmp_path, 20, 2.0)
    listed = RunDir(tmp_path).checkpoints()
    assert [c.step for c in listed] == [10, 20]
    assert listed[1].name == "step-000020-val2.0000"
    assert (tmp_path / "latest").read_text().strip() == "step-000020-val2.0000"
    assert ckpt.load_tensors(listed[0])["x"].tolist() == [10.0] * 3
    assert not list(tmp_path.rglob(".tmp-*"))


def test_best_is_lowest_validation_loss(tmp_path):
    save(tmp_path, 10, 2.0)
    save(tmp_path, 20, 2.5)
    save(tmp_path, 30, None)
    info, _ = resolve_checkpoint(tmp_path, "best")
    assert info.step == 10
    assert resolve_checkpoint(tmp_path, "latest")[0].step == 30
    assert resolve_checkpoint(tmp_path, "20")[0].step == 20
    with pytest.raises(CharRNNError, match="no checkpoint at step 40"):
        resolve_checkpoint(tmp_path, "40")
    with pytest.raises(CharRNNError, match="latest, best or a step"):
        resolve_checkpoint(tmp_path, "newest")
    assert (tmp_path / "best").read_text().strip() == "step-000010-val2.0000"


def test_damaged_weights_are_refused_naming_the_newest_good_one(tmp_path):
    save(tmp_path, 10, 2.0)
    newest = save(tmp_path, 20, 1.5)
    data = newest.tensors_path.read_bytes()
    newest.tensors_path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CharRNNError, match=r"step-000020.*damaged.*newest good one is .*step-000010"):
        resolve_checkpoint(tmp_path, "latest")


def test_flipped_byte_is_caught_by_the_checksum(tmp_path):
    info = save(tmp_path, 10, 2.0)
    data = bytearray(info.tensors_path.read_bytes())
    data[-1] ^= 0xFF
    info.tensors_path.write_bytes(bytes(data))
    with pytest.raises(CharRNNError, match="checksum"):
        ckpt.load_tensors(info)


def test_foreign_and_newer_files_are_refused(tmp_path):
    info = save(tmp_path, 10, 2.0)
    meta = json.loads(info.meta_path.read_text())
    info.meta_path.write_text(json.dumps({**meta, "format": ckpt.FORMAT_VERSION + 1}))
    with pytest.raises(CharRNNError, match="newer"):
        ckpt.open_checkpoint(info.tensors_path)
    info.meta_path.write_text(json.dumps({**meta, "program": "keras"}))
    with pytest.raises(CharRNNError, match="another program"):
        ckpt.open_checkpoint(info.tensors_path)
    info.meta_path.write_text("not json")
    with pytest.raises(CharRNNError, match="not a readable"):
        ckpt.open_checkpoint(info.tensors_path)


def test_prune_keeps_the_newest_and_the_best(tmp_path):
    for step, val in [(10, 1.0), (20, 2.0), (30, 3.0), (40, 4.0)]:
        save(tmp_path, step, val)
    RunDir(tmp_path).prune(keep=2)
    assert [c.step for c in RunDir(tmp_path).checkpoints()] == [10, 30, 40]


def test_a_save_without_its_json_does_not_count(tmp_path):
    save(tmp_path, 10, 2.0)
    (tmp_path / "checkpoints" / "step-000020.safetensors").write_bytes(b"half")
    assert [c.step for c in RunDir(tmp_path).checkpoints()] == [10]


def _hold_lock(run_dir, ready, release):
    with RunLock(run_dir):
        ready.set()
        release.wait(10)


def test_lock_refuses_a_second_holder_and_frees_on_exit(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(tmp_path, ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(CharRNNError, match=f"in use by another charrnn train \\(pid {holder.pid}\\)"):
            RunLock(tmp_path).__enter__()
    finally:
        release.set()
        holder.join(30)
    with RunLock(tmp_path):
        pass


def test_lock_of_a_killed_process_does_not_stick(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(tmp_path, ready, release))
    holder.start()
    assert ready.wait(30)
    holder.kill()
    holder.join(30)
    with RunLock(tmp_path):
        pass
