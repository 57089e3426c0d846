import pytest
import torch

from charrnn import onednn

needs_onednn = pytest.mark.skipif(not onednn.available(), reason="oneDNN's inner product is not callable here")


@needs_onednn
@pytest.mark.parametrize(("rows", "packed_for"), [(1, 1), (7, 7), (64, 64), (5, 64)])
def test_linear_computes_x_times_the_weight_transposed(rows, packed_for):
    torch.manual_seed(0)
    x, weight, bias = torch.randn(rows, 48), torch.randn(80, 48), torch.randn(80)
    packed = onednn.pack(weight, packed_for)
    torch.testing.assert_close(onednn.linear(x, packed), x @ weight.t(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(onednn.linear(x, packed, bias), x @ weight.t() + bias, rtol=1e-5, atol=1e-5)


def test_unavailable_when_the_ops_are_missing(monkeypatch):
    def missing(*_args):
        raise AttributeError("no such op")

    monkeypatch.setattr(onednn, "linear", missing)
    assert onednn.available.__wrapped__() is False


def test_unavailable_when_the_result_is_wrong(monkeypatch):
    monkeypatch.setattr(onednn, "linear", lambda x, packed: torch.zeros(x.shape[0], 4))
    assert onednn.available.__wrapped__() is False
