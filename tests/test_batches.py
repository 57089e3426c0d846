import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charrnn.batches import BatchSource
from charrnn.errors import CharRNNError


def epoch_pairs(source: BatchSource):
    """Every (input position, target position) the source yields in one epoch, via a position-coded text."""
    pairs = []
    for _ in range(source.windows_per_epoch):
        batch = source.next_batch()
        pairs.append((batch.inputs.numpy(), batch.targets.numpy()))
    return pairs


@settings(max_examples=60, deadline=None)
@given(n_chars=st.integers(3, 400), batch_size=st.integers(1, 12), seq_len=st.integers(1, 40))
def test_every_target_is_the_next_character_and_each_is_used_once(n_chars, batch_size, seq_len):
    if batch_size >= n_chars:
        return
    ids = np.arange(n_chars, dtype=np.int64)  # id == position, so targets can be checked exactly
    source = BatchSource(ids, batch_size, seq_len)
    seen = []
    pairs = epoch_pairs(source)
    for inputs, targets in pairs:
        assert (targets == inputs + 1).all()  # inside the window
        seen.extend(inputs.ravel().tolist())
    for (inputs, _), (_, previous_targets) in zip(pairs[1:], pairs[:-1], strict=True):
        assert (inputs[:, 0] == previous_targets[:, -1]).all()  # row i continues row i across windows
    unused = (n_chars - 1) % batch_size
    assert sorted(seen) == list(range(n_chars - 1 - unused))
    assert source.epoch == 1 and source.window == 0


def test_rows_are_contiguous_streams():
    source = BatchSource(np.arange(21), batch_size=2, seq_len=4)
    first, second, third = source.next_batch(), source.next_batch(), source.next_batch()
    assert first.inputs.tolist() == [[0, 1, 2, 3], [10, 11, 12, 13]]
    assert second.inputs.tolist() == [[4, 5, 6, 7], [14, 15, 16, 17]]
    assert third.inputs.tolist() == [[8, 9], [18, 19]] and third.targets.tolist() == [[9, 10], [19, 20]]
    assert first.starts_epoch and not second.starts_epoch
    assert source.next_batch().starts_epoch and source.epoch == 1


def test_position_round_trips_and_is_checked():
    source = BatchSource(np.arange(101), 4, 5)
    for _ in range(3):
        source.next_batch()
    other = BatchSource(np.arange(101), 4, 5)
    other.load_state_dict(source.state_dict())
    assert other.next_batch().inputs.tolist() == source.next_batch().inputs.tolist()
    with pytest.raises(CharRNNError):
        other.load_state_dict({"epoch": 0, "window": 99})


def test_remainder_continues_the_last_row():
    source = BatchSource(np.arange(24), 3, 4)  # 23 predictions, 3 streams of 7: 2 left over
    inputs, targets = source.remainder()
    assert inputs.tolist() == [[21, 22]] and targets.tolist() == [[22, 23]]
    assert BatchSource(np.arange(22), 3, 4).remainder() is None


def test_shards_split_the_streams():
    source = BatchSource(np.arange(81), 4, 5)
    shards = [source.shard(rank, 2) for rank in range(2)]
    full = source.next_batch().inputs
    assert shards[0].next_batch().inputs.tolist() == full[0::2].tolist()
    assert shards[1].next_batch().inputs.tolist() == full[1::2].tolist()
    with pytest.raises(CharRNNError):
        source.shard(0, 3)


def test_too_short_and_bad_sizes():
    with pytest.raises(CharRNNError):
        BatchSource(np.arange(1), 1, 1)
    with pytest.raises(CharRNNError):
        BatchSource(np.arange(5), 5, 1)
    with pytest.raises(CharRNNError):
        BatchSource(np.arange(50), 0, 5)
