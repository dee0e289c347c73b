"""Rows kept in memory, then in a temporary file, read back in blocks."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from imacs.spatial.positional import PositionalAccumulator
from imacs.spatial.row_buffer import RowBuffer


def _rows(seed: int, n: int, width: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, width)).astype(np.float32)


@pytest.mark.parametrize("spill_bytes", [None, 1, 100, 10_000])
@pytest.mark.parametrize("block", [1, 3, 64, None])
def test_rows_come_back_in_order_whatever_the_spill_and_block(spill_bytes, block) -> None:
    buffer = RowBuffer(5, spill_bytes=spill_bytes)
    parts = [_rows(seed, n) for seed, n in enumerate([1, 7, 0, 2, 40, 1, 3])]
    for part in parts:
        buffer.append(part)
    buffer.append(np.arange(5))  # one row given flat
    expected = np.concatenate([*parts, np.arange(5, dtype=np.float32)[None]])
    assert len(buffer) == len(expected)
    assert buffer.spilled == (spill_bytes is not None and spill_bytes < expected.nbytes)
    blocks = list(buffer.blocks(block))
    assert all(len(b) <= (block or len(expected)) for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks), expected)
    # a second pass reads the same rows again
    np.testing.assert_array_equal(buffer.to_array(), expected)
    buffer.close()
    assert len(buffer) == 0 and not buffer.spilled


def test_rows_added_after_a_pass_are_read_too() -> None:
    buffer = RowBuffer(5, spill_bytes=100)
    buffer.append(_rows(0, 10))
    assert buffer.to_array().shape == (10, 5)
    buffer.append(_rows(1, 10))
    np.testing.assert_array_equal(buffer.to_array(), np.concatenate([_rows(0, 10), _rows(1, 10)]))


def test_a_buffer_travels_to_another_process_only_while_in_memory() -> None:
    small = RowBuffer(5)
    small.append(_rows(0, 4))
    copy = pickle.loads(pickle.dumps(small))
    np.testing.assert_array_equal(copy.to_array(), small.to_array())
    spilled = RowBuffer(5, spill_bytes=1)
    spilled.append(_rows(0, 4))
    with pytest.raises(TypeError, match="temporary file"):
        pickle.dumps(spilled)


def test_extend_checks_the_width() -> None:
    with pytest.raises(ValueError, match="width 5"):
        RowBuffer(5).extend(RowBuffer(4))


def _filled(spill: bool, tmp_path) -> PositionalAccumulator:
    rng = np.random.default_rng(3)
    accumulator = PositionalAccumulator(grid=8, directory=tmp_path)
    if spill:
        accumulator.cells.spill_bytes = 3000  # a few images' rows at a time
    for _ in range(60):
        left = rng.gamma(2.0, size=(20, 24))
        left[:, :8] *= 4.0  # B leans on the left
        accumulator.add(rng.gamma(2.0, size=(20, 24)), left)
    assert accumulator.cells.spilled == spill
    return accumulator


def test_positional_statistics_are_the_same_read_from_the_file(tmp_path) -> None:
    held = _filled(False, tmp_path).result(n_bootstrap=300, n_flips=400, seed=1)
    spilled = _filled(True, tmp_path).result(n_bootstrap=300, n_flips=400, seed=1)
    assert held.marked.any()  # the lean on the left is found
    for name in held.ARRAYS:
        np.testing.assert_allclose(
            getattr(spilled, name), getattr(held, name), rtol=1e-9, atol=1e-12, err_msg=name
        )
    assert spilled.n_images == held.n_images == 60
    np.testing.assert_allclose(spilled.border["ci_low"], held.border["ci_low"])


def test_joined_accumulators_equal_one(tmp_path) -> None:
    whole = _filled(False, tmp_path)
    joined = PositionalAccumulator(grid=8)
    rows, ratios = whole.cells.to_array(), whole.ratios.to_array()
    for start in range(0, 60, 16):
        part = PositionalAccumulator(grid=8)
        part.cells.append(rows[start : start + 16])
        part.ratios.append(ratios[start : start + 16])
        part.min_side = whole.min_side
        joined.extend(part)
    np.testing.assert_array_equal(joined.cells.to_array(), rows)
    assert joined.min_side == whole.min_side
    with pytest.raises(Exception, match="grid 4"):
        joined.extend(PositionalAccumulator(grid=4))


def test_resampling_over_blocks_equals_it_over_the_array() -> None:
    from imacs.spatial.positional import RowBlocks, bootstrap_interval, maxt_sign_flip

    values = np.random.default_rng(5).normal(0.1, 1.0, size=(50, 6))
    values[:, 0] += 1.0
    blocks = RowBlocks(50, 6, lambda: [values[s : s + 7] for s in range(0, 50, 7)])
    weights = np.random.default_rng(6).random((4, 50))
    np.testing.assert_allclose(blocks.weighted_sums(weights), weights @ values, rtol=1e-12)
    for statistic in (
        lambda v, rng: bootstrap_interval(v, 0.05, 200, rng),
        lambda v, rng: maxt_sign_flip(v, 300, rng),
    ):
        whole = statistic(values, np.random.default_rng(7))
        split = statistic(blocks, np.random.default_rng(7))
        np.testing.assert_allclose(split, whole, rtol=1e-12)
    short = RowBlocks(51, 6, blocks.blocks)
    with pytest.raises(ValueError, match="expected 51 rows"):
        short.weighted_sums(np.ones((1, 51)))


@pytest.mark.parametrize("chunk", [1, 37])
def test_resampling_gives_the_same_result_whatever_its_chunk(
    chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imacs.spatial import positional

    values = np.random.default_rng(8).normal(0.05, 1.0, size=(40, 5))
    statistics = (
        lambda rng: positional.bootstrap_interval(values, 0.05, 120, rng),
        lambda rng: positional.maxt_sign_flip(values, 150, rng),
    )
    whole = [statistic(np.random.default_rng(9)) for statistic in statistics]
    monkeypatch.setattr(positional, "replicates_per_chunk", lambda n: chunk)
    for statistic, expected in zip(statistics, whole, strict=True):
        np.testing.assert_allclose(statistic(np.random.default_rng(9)), expected, rtol=1e-12)
    assert positional.replicates_per_chunk(40) == chunk
    monkeypatch.undo()
    assert positional.replicates_per_chunk(4000) == 250
    assert positional.replicates_per_chunk(20_000) == 2**20 // 20_000
