"""KVCache's verbs: positions move, rows are copied only where a cache takes another's content."""

from __future__ import annotations

import pytest
import torch

from lsp_server.engine.kv_cache import KVCache
from lsp_server.engine.runner import ModelRunner
from tests.fixtures import tiny_llama

LAYERS, HEADS, DIM = 2, 2, 4


def cache(capacity: int = 8) -> KVCache:
    return KVCache(LAYERS, HEADS, DIM, capacity, torch.float32, "cpu")


def filled(tokens: list[int], capacity: int = 8) -> KVCache:
    """A cache holding `tokens`, row p of every layer filled with p + 1 (as a forward would write it)."""
    c = cache(capacity)
    for p in range(len(tokens)):
        c.k[:, :, :, p] = p + 1
        c.v[:, :, :, p] = -(p + 1)
    c.append(tokens)
    return c


def test_a_new_cache_holds_nothing_and_knows_its_size():
    c = cache(8)
    assert (c.length, c.capacity, c.tokens) == (0, 8, [])
    assert c.k.shape == (LAYERS, 1, HEADS, 8, DIM)
    assert c.nbytes == 2 * LAYERS * HEADS * 8 * DIM * 4


def test_append_records_ids_and_refuses_to_overflow():
    c = cache(4)
    c.append([5, 6])
    c.append([7])
    assert (c.length, c.tokens) == (3, [5, 6, 7])
    with pytest.raises(AssertionError):
        c.append([8, 9])
    assert c.tokens == [5, 6, 7]


@pytest.mark.parametrize("ids, common, reusable", [
    ([5, 6, 7], 3, 2),  # the whole prompt is held: its last id is fed again, for its logits
    ([5, 6, 7, 8], 3, 3),  # one new id
    ([5, 9, 7], 1, 1),  # an edit after the first id
    ([9], 0, 0),
    ([5, 6], 2, 1),  # a prompt shorter than what is held
])
def test_common_prefix_and_reusable(ids, common, reusable):
    c = filled([5, 6, 7])
    assert c.common_prefix(ids) == common
    assert c.reusable(ids) == reusable
    assert c.length == 3  # asking moves nothing


def test_reuse_rewinds_to_the_reusable_part():
    c = filled([5, 6, 7, 8])
    assert c.reuse([5, 6, 9]) == 2
    assert c.tokens == [5, 6]


def test_rewind_and_reset_move_the_position_and_touch_no_row():
    c = filled([5, 6, 7])
    rows = c.k.clone()
    c.rewind(1)
    assert c.tokens == [5]
    with pytest.raises(AssertionError):
        c.rewind(2)  # cannot move forward
    c.reset()
    assert c.length == 0 and torch.equal(c.k, rows)


def test_load_copies_the_valid_rows_and_ids():
    src = filled([5, 6, 7])
    dst = filled([1, 1, 1, 1, 1, 1])
    dst.k.fill_(99.0)
    dst.load(src)
    assert dst.tokens == [5, 6, 7]
    assert torch.equal(dst.k[:, :, :, :3], src.k[:, :, :, :3]) and torch.equal(dst.v[:, :, :, :3], src.v[:, :, :, :3])
    assert bool((dst.k[:, :, :, 3:] == 99.0).all())  # rows past the valid ones are left alone
    src.append([8])
    assert dst.tokens == [5, 6, 7]  # a copy, not a view of the source's ids


def test_load_keeps_what_fits_and_none_empties():
    small = cache(2)
    small.load(filled([5, 6, 7]))
    assert small.tokens == [5, 6] and float(small.k[0, 0, 0, 1, 0]) == 2.0
    small.load(None)
    assert small.length == 0


def test_a_forward_writes_its_rows_and_appends_its_ids():
    runner = ModelRunner(tiny_llama(64, 32, 2, seed=0))
    c = runner.new_cache(16)
    runner.extend(c, [1, 5, 9])
    assert c.tokens == [1, 5, 9]
    written = c.k[:, :, :, :3].clone()
    assert bool((written != 0).any(dim=-1).all())  # every layer, head and position got a row
    assert bool((c.k[:, :, :, 3:] == 0).all())
    c.rewind(2)
    runner.extend(c, [7])  # overwrites row 2; rows 0-1 stay
    assert c.tokens == [1, 5, 7]
    assert torch.equal(c.k[:, :, :, :2], written[:, :, :, :2]) and not torch.equal(c.k[:, :, :, 2], written[:, :, :, 2])
