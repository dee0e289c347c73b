"""The blind-spot probe, and the whole analysis on a PyTorch model against a Keras model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from imacs.spatial.blind_spots import blob, probe_blind_spots


def _corner_blind_model():
    """A fixed model whose first layer's weights are zero over the top-left quadrant."""
    import torch
    from torch import nn

    class CornerBlind(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            mask = torch.ones(1, 1, 16, 16)
            mask[..., :8, :8] = 0
            self.register_buffer("mask", mask)
            self.head = nn.Linear(1, 2)
            with torch.no_grad():
                self.head.weight.copy_(torch.tensor([[1.0], [-1.0]]))
                self.head.bias.zero_()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen = (x * self.mask).mean(dim=1, keepdim=True)
            return self.head(seen.sum(dim=(2, 3)))

    return CornerBlind().eval()


def test_probe_flags_the_zeroed_corner() -> None:
    pytest.importorskip("torch")
    from imacs import load_model

    probe = probe_blind_spots(
        load_model(_corner_blind_model()), blob(4, 3), (16, 16, 3), background=0.0, grid=8
    )
    # patches at cells 0-3 lie inside the zeroed quadrant, at cell 4 they straddle its edge
    assert probe.flagged[:4, :4].all(), probe.scores
    assert not probe.flagged[5:, :].any() and not probe.flagged[:, 5:].any()


def test_torch_against_keras_end_to_end(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("keras")
    from click.testing import CliRunner

    import imacs
    from imacs.cli import cli
    from imacs.comparison.result import Comparison
    from imacs.demo.models import train_keras_cnn, train_torch_cnn

    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (160, 20, 20, 3)).astype(np.float32)
    labels = (images[:, :10].mean(axis=(1, 2, 3)) > images[:, 10:].mean(axis=(1, 2, 3))).astype(int)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model_a = train_torch_cnn(images, labels, epochs=2)
    finally:
        torch.set_num_threads(threads)
    model_b = train_keras_cnn(images, labels, epochs=2)
    comparison = imacs.compare(
        model_a,
        model_b,
        images[:40],
        labels[:40],
        method="gradient",
        n_clusters=3,
        causal=None,
        n_permutations=200,
        store=tmp_path / "store",
        progress=False,
    )
    spatial = comparison.spatial
    assert spatial.positional is not None and spatial.positional.mean_a.shape == (32, 32)
    assert len(spatial.positional.border)
    assert (
        set(spatial.padding) == set(spatial.activations) == set(spatial.blind_spots) == {"a", "b"}
    )
    # 20 -> pool -> 10 -> pool -> 5: even everywhere; both frameworks agree
    assert spatial.padding["a"]["uneven"] == spatial.padding["b"]["uneven"] == 0
    assert len(spatial.activations["a"]) == len(spatial.activations["b"]) == 5  # 3 conv, 2 pool
    assert "spatial" in comparison.timings
    out = comparison.save(tmp_path / "out", progress=False)
    html = (out / "report.html").read_text()
    assert 'data-testid="where-in-the-frame"' in html and "padding-table" in html
    assert (out / "positional.png").is_file()
    listed = json.loads((out / "comparison.json").read_text())["sha256"]
    assert {"spatial.json", "spatial.npz", "positional.png"} <= set(listed)
    loaded = Comparison.load(out)
    np.testing.assert_allclose(loaded.spatial.positional.difference, spatial.positional.difference)
    assert loaded.spatial.padding["b"]["layers"].equals(spatial.padding["b"]["layers"])
    # imacs inspect on the Keras model at a size that pads unevenly
    path = tmp_path / "b.keras"
    model_b.save(path)
    result = CliRunner().invoke(cli, ["inspect", "--model", str(path), "--size", "21x20"])
    assert result.exit_code == 0, result.output
    assert "UNEVEN" in result.output and "nearest heights" in result.output
    # Comparison.spatial=False leaves it out
    without = imacs.compare(
        model_a,
        model_b,
        images[:40],
        labels[:40],
        method="gradient",
        n_clusters=3,
        causal=None,
        n_permutations=200,
        store=tmp_path / "store",
        progress=False,
        spatial=False,
    )
    assert without.spatial is None
