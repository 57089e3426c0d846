import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from charrnn.data.vocab import Vocab
from charrnn.errors import CharRNNError


def test_vocab_is_sorted_code_points():
    assert Vocab.from_text("banana\nÅ!").chars == ("\n", "!", "a", "b", "n", "Å")


def test_vocab_is_the_same_in_another_process():
    text = "the quick brown fox jumps over the lazy dog ÆØÅ €"
    code = f"from charrnn.data.vocab import Vocab; print(''.join(Vocab.from_text({text!r}).chars))"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONHASHSEED": str(seed)}
        ).stdout
        for seed in (1, 2)
    }
    assert outputs == {"".join(Vocab.from_text(text).chars) + "\n"}


@given(st.text(min_size=1))
def test_encode_decode_round_trips_any_unicode(text):
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    assert len(ids) == len(text)
    assert vocab.decode(ids) == text
    assert ids.max() < len(vocab)


def test_ids_use_one_byte_for_small_vocabularies():
    assert Vocab.from_text("abc").encode("cab").dtype == np.uint8
    wide = "".join(chr(0x4E00 + i) for i in range(300))
    assert Vocab.from_text(wide).encode(wide).dtype == np.uint16


def test_unknown_characters_are_named():
    vocab = Vocab.from_text("abc")
    with pytest.raises(CharRNNError) as err:
        vocab.encode("ab€z")
    assert "'z'" in str(err.value) and "'€'" in str(err.value)


def test_json_round_trip_and_bad_json():
    vocab = Vocab.from_text("hello, world\n")
    assert Vocab.from_json(vocab.to_json()) == vocab
    with pytest.raises(CharRNNError):
        Vocab.from_json(["b", "a"])
    with pytest.raises(CharRNNError):
        Vocab.from_json("ab")


def test_one_byte_and_wide_chunks_encode_alike_and_name_unknown_characters():
    vocab = Vocab.from_chunks(["abcé", "☃𝄞"])  # one-byte chunk, then wide (one above 65,535)
    assert "".join(vocab.chars) == "abcé☃𝄞"
    narrow, wide = vocab.encode("abcé"), vocab.encode("abcé☃")  # the second takes the wide path
    assert list(narrow) == list(wide[:4]) and vocab.decode(wide) == "abcé☃"
    for text, name in (("abz", "'z'"), ("ab☂", "'☂'"), ("ÿ", "'ÿ'")):
        with pytest.raises(CharRNNError, match=name):
            vocab.encode(text)
    with pytest.raises(CharRNNError, match="'ÿ'"):  # past a one-byte vocabulary's own table
        Vocab(("a", "b", "c")).encode("abcÿ")
    with pytest.raises(CharRNNError, match="'Å'"):
        Vocab(("a", "b", "c")).encode("Å")


def test_one_byte_chunks_of_a_wide_vocabulary_take_its_ids():
    vocab = Vocab(tuple(chr(cp) for cp in range(32, 332)))  # 300 characters: uint16 ids
    ids = vocab.encode("Hello, world")
    assert ids.dtype == np.uint16 and list(ids) == [ord(c) - 32 for c in "Hello, world"]
    assert vocab.decode(vocab.encode("Hello ĀĪ")) == "Hello ĀĪ"
