"""The padding checker against the frameworks themselves, on a grid of geometries.

A one-hot input row ``r`` is sent through a single-channel convolution whose taps are
1, 2, ..., k along the rows: the output rows that see it say which rows are read, and
the tap value at the first output row says how much padding precedes the input. The
checker's verdict must match what the framework did.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from imacs.spatial.padding import axis_padding, padding_table

SIZES = (7, 8, 9, 10, 13, 16)
KERNELS = (1, 2, 3, 5, 7)
STRIDES = (1, 2, 3)
DILATIONS = (1, 2)


def _observed(outputs: np.ndarray, n: int, kernel: int, stride: int, dilation: int) -> tuple:
    """(padding before, padding after, input rows never read) from one-hot responses.

    ``outputs[r, o]`` is output row ``o`` for a one-hot input at row ``r``, with tap ``t``
    weighted ``t + 1``.
    """
    read = np.flatnonzero(np.abs(outputs).sum(axis=1) > 0)
    # with gaps between taps or windows, rows inside the image go unread too: not counted
    unread = n - 1 - read.max() if np.all(np.diff(read) == 1) else None
    first = np.flatnonzero(outputs[read[0]])[0]
    tap = int(np.rint(outputs[read[0], first])) - 1
    before = first * stride + tap * dilation - read[0]
    out = outputs.shape[1]
    after = (out - 1) * stride - before + (kernel - 1) * dilation - (n - 1)
    return before, after, unread


def _torch_conv_rows(n: int, kernel: int, stride: int, padding: int | str, dilation: int):
    import torch

    rows = padding if isinstance(padding, str) else (padding, 0)
    conv = torch.nn.Conv2d(1, 1, (kernel, 1), (stride, 1), rows, (dilation, 1), bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.arange(1, kernel + 1, dtype=torch.float32).view(1, 1, kernel, 1))
        return conv(torch.eye(n).view(n, 1, n, 1))[:, 0, :, 0].numpy()


def _cases(paddings):
    for n, k, s, p, d in itertools.product(SIZES, KERNELS, STRIDES, paddings, DILATIONS):
        if isinstance(p, int) and n + 2 * p < d * (k - 1) + 1:
            continue
        if isinstance(p, str) and p == "valid" and n < d * (k - 1) + 1:
            continue
        yield n, k, s, p, d


def test_torch_convolutions_read_what_the_checker_says() -> None:
    pytest.importorskip("torch")
    checked = 0
    for n, k, s, p, d in _cases((0, 1, 2, 3, "same")):
        if p == "same" and s > 1:
            continue  # PyTorch refuses 'same' with strides
        verdict = axis_padding(n, k, s, p, d)
        before, after, unread = _observed(_torch_conv_rows(n, k, s, p, d), n, k, s, d)
        assert (verdict.before, verdict.after) == (before, after), (n, k, s, p, d)
        if unread is not None and d == 1:  # dilation leaves holes inside windows
            assert max(-verdict.after, 0) == unread, (n, k, s, p, d)
        checked += 1
    assert checked > 500


def test_torch_pooling_with_and_without_ceil_mode() -> None:
    torch = pytest.importorskip("torch")
    for n, k, s, p, ceil in itertools.product(SIZES, (2, 3), (1, 2, 3), (0, 1), (False, True)):
        if p > k // 2:
            continue
        pool = torch.nn.MaxPool2d((k, 1), (s, 1), (p, 0), ceil_mode=ceil)
        outputs = pool(torch.eye(n).view(n, 1, n, 1))[:, 0, :, 0].numpy()
        verdict = axis_padding(n, k, s, p, ceil_mode=ceil)
        read = np.flatnonzero(outputs.sum(axis=1) > 0)
        if k >= s:
            assert max(-verdict.after, 0) == n - 1 - read.max(), (n, k, s, p, ceil)
        # the number of windows follows from the padding read on both sides
        assert outputs.shape[1] == (n + verdict.before + verdict.after - k) // s + 1


def test_keras_convolutions_read_what_the_checker_says() -> None:
    keras = pytest.importorskip("keras")
    checked = 0
    for n, k, s, p, d in _cases(("same", "valid")):
        if d > 1 and s > 1:
            continue  # Keras refuses dilation together with strides
        layer = keras.layers.Conv2D(1, (k, 1), (s, 1), p, dilation_rate=(d, 1), use_bias=False)
        layer.build((None, n, 1, 1))
        layer.set_weights([np.arange(1, k + 1, dtype=np.float32).reshape(k, 1, 1, 1)])
        outputs = np.asarray(layer(np.eye(n, dtype=np.float32).reshape(n, n, 1, 1)))[:, :, 0, 0]
        verdict = axis_padding(n, k, s, p, d)
        before, after, unread = _observed(outputs, n, k, s, d)
        assert (verdict.before, verdict.after) == (before, after), (n, k, s, p, d)
        if unread is not None and d == 1:  # dilation leaves holes inside windows
            assert max(-verdict.after, 0) == unread, (n, k, s, p, d)
        checked += 1
    assert checked > 150


def test_resnet_stem_at_224_is_uneven_and_225_is_not() -> None:
    stem = axis_padding(224, 7, 2, 3)
    assert stem.unused == 1 and (stem.before, stem.after) == (3, 2) and stem.uneven
    assert not axis_padding(225, 7, 2, 3).uneven
    # Keras's ZeroPadding2D(3) then a valid 7x7/2 convolution: the same stem
    assert axis_padding(230, 7, 2, "valid").uneven
    # Keras 'same' at stride 2 on an even size pads the bottom/right more
    same = axis_padding(224, 3, 2, "same")
    assert (same.before, same.after) == (0, 1)


def _stem_torch():
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(3, 4, 7, 2, 3),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, 1),
        nn.Conv2d(4, 4, 3, 1, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    )


def _stem_keras(size: int):
    import keras

    inputs = keras.Input((size, size, 3))
    x = keras.layers.ZeroPadding2D(3)(inputs)
    x = keras.layers.Conv2D(4, 7, 2, name="stem")(x)
    x = keras.layers.MaxPooling2D(3, 2, padding="same", name="pool")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def test_adapters_report_the_stem_and_the_nearest_even_sizes() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("keras")
    from imacs import load_model
    from imacs.spatial.padding import format_report, padding_report

    torch_model = load_model(_stem_torch())
    keras_model = load_model(_stem_keras(224))
    for adapter, stem in ((torch_model, "0"), (keras_model, "stem")):
        assert "geometry" in adapter.capabilities
        report = padding_report(adapter, (224, 224))
        table = report["layers"].set_index("layer")
        assert table.loc[stem, "uneven"], table
        assert table.loc[stem, "input"] in ("224x224", "230x230")
        assert report["nearest"]["height"]["above"] == 225
        assert "UNEVEN" in format_report(report)
    # padding_table reads adapter reports and hand-written ones alike
    stem = {"name": "c", "input_size": (224, 224), "kernel": (7, 7), "stride": (2, 2)}
    hand = padding_table([{**stem, "padding": (3, 3)}])
    assert bool(hand["uneven"].iloc[0])
