import pytest
import torch

from charrnn.model import onednn

needs_onednn = pytest.mark.skipif(not onednn.available(), reason="oneDNN's inner product is not callable here")


@needs_onednn
@pytest.mark.parametrize(("rows", "packed_for"), [(1, 1), (7, 7), (64, 64), (5, 64)])
def test_linear_computes_x_times_the_weight_transposed(rows, packed_for):
    torch.manual_seed(0)
    x, weight, bias = torch.randn(rows, 48), torch.randn(80, 48), torch.randn(80)
    packed = onednn.pack(weight, packed_for)
    torch.testing.assert_close(onednn.linear(x, packed), x @ weight.t(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(onednn.linear(x, packed, bias), x @ weight.t() + bias, rtol=1e-5, atol=1e-5)


def test_checking_leaves_the_global_random_state_alone():
    """The check runs at the first step of a process; drawing from torch's generator there made a resumed
    run's dropout masks differ from the unbroken run's."""
    before = torch.get_rng_state()
    onednn.available.__wrapped__()
    assert torch.equal(torch.get_rng_state(), before)


def test_unavailable_when_the_ops_are_missing(monkeypatch):
    def missing(*_args):
        raise AttributeError("no such op")

    monkeypatch.setattr(onednn, "linear", missing)
    assert onednn.available.__wrapped__() is False


def test_unavailable_when_the_result_is_wrong(monkeypatch):
    monkeypatch.setattr(onednn, "linear", lambda x, packed: torch.zeros(x.shape[0], 4))
    assert onednn.available.__wrapped__() is False


@needs_onednn
@pytest.mark.parametrize(("rows", "features", "outputs"), [(1, 48, 83), (7, 5, 3), (1000, 64, 83)])
@pytest.mark.parametrize("wanted", [(True, True, True), (True, False, False), (False, True, True)])
def test_trainable_linear_matches_torch_in_values_and_gradients(rows, features, outputs, wanted):
    torch.manual_seed(0)
    tensors = [torch.randn(rows, features), torch.randn(outputs, features), torch.randn(outputs)]
    mine = [t.clone().requires_grad_(w) for t, w in zip(tensors, wanted, strict=True)]
    theirs = [t.clone().requires_grad_(w) for t, w in zip(tensors, wanted, strict=True)]
    got, want = onednn.TrainableLinear.apply(*mine), torch.nn.functional.linear(*theirs)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)
    upstream = torch.randn(rows, outputs)
    (got * upstream).sum().backward()
    (want * upstream).sum().backward()
    for a, b in zip(mine, theirs, strict=True):
        assert (a.grad is None) == (b.grad is None)
        if b.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-4)
