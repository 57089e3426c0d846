import ctypes
import ctypes.util

import pytest
import torch

from charrnn.training import allocator


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost"
    )]  # fmt: skip


def _mallinfo2():
    try:
        function = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallinfo2
    except (OSError, AttributeError):
        pytest.skip("needs glibc 2.33 or later (mallinfo2)")
    function.restype = _MallInfo2
    return function


def test_large_blocks_come_from_the_heap_and_stay_there_once_freed():
    mallinfo2 = _mallinfo2()
    assert allocator.keep_freed_memory() is True
    assert allocator.keep_freed_memory() is True  # once per process; asking again changes nothing
    mapped_before = mallinfo2().hblkhd
    block = torch.empty(64 * 2**20 // 4)  # 64 MB: above even glibc's largest mmap threshold
    block.fill_(1.0)
    assert mallinfo2().hblkhd == mapped_before  # not a fresh mapping
    heap_with_block = mallinfo2().arena
    del block
    assert mallinfo2().arena == heap_with_block  # freed, but kept for the next step's buffers


def test_no_glibc_means_no_change(monkeypatch):
    def no_library(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", no_library)
    assert allocator.keep_freed_memory.__wrapped__() is False
