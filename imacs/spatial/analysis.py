"""The "where in the frame" analysis of a comparison, kept with it and shown in its report.

Four parts, each named and each optional:

- ``positional``: both models' positional attribution maps, B - A and where it is real,
  border-versus-centre ratios (:mod:`imacs.spatial.positional`), built from the stored
  maps while the comparison scores them;
- ``padding``: each model's convolutions and poolings at the images' size, with uneven
  padding marked and the nearest even sizes (:mod:`imacs.spatial.padding`);
- ``activations``: mean activation maps per layer on a sample of the images and on
  constant images (:mod:`imacs.spatial.activations`);
- ``blind_spots``: the blind-spot probe with a blob on the dataset's mean colour
  (:mod:`imacs.spatial.blind_spots`).

A part a model's adapter cannot compute (no ``geometry`` or ``embedding`` capability)
is left out for that model, and ``skipped`` says why.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imacs.errors import ImacsError
from imacs.jsonable import json_ready
from imacs.spatial.blind_spots import BlindSpots, blob, probe_blind_spots
from imacs.spatial.positional import PositionalMaps

#: the files a comparison's spatial analysis is saved in
ARRAYS_FILE = "spatial.npz"
META_FILE = "spatial.json"
#: images of the dataset the activation maps are averaged over
ACTIVATION_IMAGES = 64


@dataclass
class SpatialResult:
    """What :func:`analyse_models` and the positional maps found; see the module docs."""

    positional: PositionalMaps | None = None
    #: per side, ``{"size", "layers" (table), "uneven", "nearest"}``
    padding: dict[str, Any] = field(default_factory=dict)
    #: per side, ``{layer: {"data" | "zeros" | "constant": relative map}}``
    activations: dict[str, dict[str, dict[str, np.ndarray]]] = field(default_factory=dict)
    #: per side, the probe's result
    blind_spots: dict[str, BlindSpots] = field(default_factory=dict)
    #: per part and side, why it was not computed
    skipped: dict[str, str] = field(default_factory=dict)

    def save(self, folder: Path) -> list[Path]:
        """Write ``spatial.npz`` (maps) and ``spatial.json`` (tables); return their paths."""
        arrays: dict[str, np.ndarray] = {}
        if self.positional is not None:
            for name, value in self.positional.as_arrays().items():
                arrays[f"positional/{name}"] = value
        layer_names: dict[str, list[str]] = {}
        for side, layers in self.activations.items():
            layer_names[side] = list(layers)
            for j, maps in enumerate(layers.values()):
                for kind, value in maps.items():
                    arrays[f"activations/{side}/{j}/{kind}"] = value
        meta = {
            "padding": {
                side: {**report, "layers": report["layers"].to_dict(orient="records")}
                for side, report in self.padding.items()
            },
            "activation_layers": layer_names,
            "blind_spots": {side: probe.as_dict() for side, probe in self.blind_spots.items()},
            "skipped": self.skipped,
            "has_positional": self.positional is not None,
        }
        with (folder / ARRAYS_FILE).open("wb") as file:
            np.savez_compressed(file, **arrays)  # type: ignore[arg-type]
        (folder / META_FILE).write_text(json.dumps(json_ready(meta), indent=1) + "\n")
        return [folder / ARRAYS_FILE, folder / META_FILE]

    @classmethod
    def load(cls, folder: Path) -> SpatialResult:
        import pandas as pd

        meta = json.loads((folder / META_FILE).read_text())
        with np.load(folder / ARRAYS_FILE) as stored:
            arrays = {name: stored[name] for name in stored.files}
        positional = None
        if meta.get("has_positional"):
            prefix = "positional/"
            positional = PositionalMaps.from_arrays(
                _Arrays({k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)})
            )
        activations: dict[str, dict[str, dict[str, np.ndarray]]] = {}
        for side, names in meta.get("activation_layers", {}).items():
            activations[side] = {
                name: {
                    kind: arrays[f"activations/{side}/{j}/{kind}"]
                    for kind in ("data", "zeros", "constant")
                    if f"activations/{side}/{j}/{kind}" in arrays
                }
                for j, name in enumerate(names)
            }
        padding = {
            side: {**report, "layers": pd.DataFrame(report["layers"])}
            for side, report in meta.get("padding", {}).items()
        }
        return cls(
            positional=positional,
            padding=padding,
            activations=activations,
            blind_spots={
                side: BlindSpots.from_dict(probe)
                for side, probe in meta.get("blind_spots", {}).items()
            },
            skipped=meta.get("skipped", {}),
        )


class _Arrays(dict[str, np.ndarray]):
    """A dict that answers ``.files`` as an ``.npz`` file does."""

    @property
    def files(self) -> list[str]:
        return list(self)


def analyse_models(
    models: Mapping[str, Any],
    sample: np.ndarray,
    *,
    parts: Sequence[str] = ("padding", "activations", "blind_spots"),
    batch_size: int | None = None,
) -> SpatialResult:
    """The model-needing parts for both models, on ``sample`` images of the dataset.

    ``sample`` (``(N, H, W, C)``, a few dataset images) gives the input size, the mean
    colour (the probe's background and the constant image) and the activation maps' data.
    """
    from imacs.spatial.activations import mean_activation_maps
    from imacs.spatial.padding import padding_report

    result = SpatialResult()
    size = (int(sample.shape[1]), int(sample.shape[2]))
    colour = sample.mean(axis=(0, 1, 2))
    low, high = float(sample.min()), float(sample.max())
    for side, model in models.items():
        if "padding" in parts:
            if "geometry" in model.capabilities:
                result.padding[side] = padding_report(model, size)
            else:
                result.skipped[f"padding_{side}"] = "the adapter has no 'geometry' capability"
        if "activations" in parts:
            if "embedding" in model.capabilities:
                try:
                    result.activations[side] = mean_activation_maps(
                        model, sample, constant=colour, batch_size=batch_size
                    )
                except ImacsError as exc:
                    result.skipped[f"activations_{side}"] = str(exc)
            else:
                result.skipped[f"activations_{side}"] = "the adapter has no 'embedding' capability"
        if "blind_spots" in parts:
            side_len = max(3, min(size) // 4)
            stimulus = blob(side_len, sample.shape[3], low=float(colour.mean()), high=high)
            if abs(high - float(colour.mean())) < 1e-6:
                stimulus = blob(side_len, sample.shape[3], low=float(colour.mean()), high=low)
            result.blind_spots[side] = probe_blind_spots(
                model, stimulus, sample.shape[1:], background=colour, batch_size=batch_size
            )
    return result
