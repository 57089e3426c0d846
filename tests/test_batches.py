import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charrnn.data.batches import BatchSource
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


@settings(max_examples=40, deadline=None)
@given(n_chars=st.integers(3, 300), batch_size=st.integers(1, 8), seq_len=st.integers(1, 30), seed=st.integers(0, 99))
def test_shifted_epochs_keep_true_targets_and_continuous_rows(n_chars, batch_size, seq_len, seed):
    if batch_size >= n_chars:
        return
    source = BatchSource(np.arange(n_chars, dtype=np.int64), batch_size, seq_len, offset_seed=seed)
    for epoch in range(4):
        offset = source.offset(epoch)
        assert 0 <= offset < max(1, (n_chars - 1) // batch_size) and (epoch > 0 or offset == 0)
        pairs = epoch_pairs(source)
        assert (pairs[0][0][:, 0] >= offset).all() and pairs[0][0][0, 0] == offset  # streams start at the offset
        for inputs, targets in pairs:
            assert (targets == inputs + 1).all()
        for (inputs, _), (_, previous) in zip(pairs[1:], pairs[:-1], strict=True):
            assert (inputs[:, 0] == previous[:, -1]).all()
        seen = sorted(np.concatenate([i.ravel() for i, _ in pairs]).tolist())
        assert seen == list(range(offset, offset + len(seen))) and len(seen) > (n_chars - 1 - offset) - batch_size
        assert source.epoch == epoch + 1 and source.window == 0


def test_shifted_epochs_start_elsewhere_and_repeat_by_seed():
    ids = np.arange(10_001)
    first = [BatchSource(ids, 8, 50, offset_seed=7).offset(epoch) for epoch in range(6)]
    assert first[0] == 0 and len(set(first[1:])) == 5  # each later epoch starts somewhere new
    assert first == [BatchSource(ids, 8, 50, offset_seed=7).offset(epoch) for epoch in range(6)]
    assert first != [BatchSource(ids, 8, 50, offset_seed=8).offset(epoch) for epoch in range(6)]
    assert [BatchSource(ids, 8, 50).offset(epoch) for epoch in range(6)] == [0] * 6


def test_shifted_position_round_trips_into_a_later_epoch():
    source = BatchSource(np.arange(1_001), 4, 7, offset_seed=3)
    for _ in range(source.windows_per_epoch * 2 + 5):
        source.next_batch()
    assert source.epoch == 2 and source.offset(2) > 0
    other = BatchSource(np.arange(1_001), 4, 7, offset_seed=3)
    other.load_state_dict(source.state_dict())
    for _ in range(source.windows_per_epoch + 3):  # on into the next epoch's layout
        assert other.next_batch().inputs.tolist() == source.next_batch().inputs.tolist()


def test_a_refused_position_leaves_the_source_where_it_was():
    source = BatchSource(np.arange(101), 4, 5, offset_seed=1)
    source.next_batch()
    before = source.state_dict()
    with pytest.raises(CharRNNError):
        source.load_state_dict({"epoch": 3, "window": 10_000})
    assert source.state_dict() == before


def test_shards_follow_the_shifted_layout():
    source = BatchSource(np.arange(401), 4, 5, offset_seed=2)
    shards = [source.shard(rank, 2) for rank in range(2)]
    for _ in range(source.windows_per_epoch + 2):  # across an epoch boundary
        full = source.next_batch().inputs
        assert shards[0].next_batch().inputs.tolist() == full[0::2].tolist()
        assert shards[1].next_batch().inputs.tolist() == full[1::2].tolist()
    assert shards[0].remainder() is None
