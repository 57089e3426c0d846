"""The server's cache of primes' states, alone."""

import torch

from charrnn.serve.primes import PrimeCache


def state(value: float) -> tuple:
    return (torch.full((2, 1, 3), value), torch.full((2, 1, 3), -value))


def test_the_least_recently_used_prime_goes_first():
    cache = PrimeCache(2)
    cache.put("a", 1, state(1.0))
    cache.put("b", 2, state(2.0))
    assert cache.get("a")[0] == 1  # now "b" is the older
    cache.put("c", 3, state(3.0))
    assert cache.get("b") is None and [cache.get(p)[0] for p in "ac"] == [1, 3] and len(cache) == 2


def test_a_kept_state_is_a_copy_and_size_0_keeps_none():
    cache, mine = PrimeCache(1), state(1.0)
    cache.put("a", 1, mine)
    mine[0].fill_(9.0)
    assert torch.equal(cache.get("a")[1][0], torch.full((2, 1, 3), 1.0))
    none = PrimeCache(0)
    none.put("a", 1, mine)
    assert none.get("a") is None and len(none) == 0
