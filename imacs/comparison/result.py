"""The result of a comparison: four tables and what produced them."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imacs.errors import InvalidInputError

#: the tables of a comparison, in the order they are saved and described
TABLES = ("clusters", "regions", "images", "classes")
#: bumped when the saved layout changes; ``Comparison.load`` refuses other versions
RESULT_FORMAT = 1


@dataclass
class Comparison:
    """Two models compared on one dataset.

    Tables (pandas DataFrames):

    ``clusters``
        One row per cluster of salient regions, ranked by the standardised difference
        of B's and A's attribution: support, both models' totals and means, the
        difference with its bootstrap confidence interval, p- and q-values, accuracy of
        each model on the cluster's images, and the causal check when it was run.
    ``regions``
        One row per salient region: its image, cluster, area, both models' attribution
        mass, density and rank, and who selected it.
    ``images``
        One row per image: label, both predictions and targets, correctness, and the
        agreement of the two maps (Spearman, top-k IoU, SSIM, cosine).
    ``classes``
        Per cluster and class: support and both models' mean attribution.
    """

    clusters: Any
    regions: Any
    images: Any
    classes: Any
    settings: dict[str, Any] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    store: str | None = None
    #: images attributed by this run per model (the rest were found in the store)
    work: dict[str, int] = field(default_factory=dict, compare=False)
    #: seconds spent per stage by this run
    timings: dict[str, float] = field(default_factory=dict, compare=False)

    # -- summaries ----------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Accuracy of each model, how often they agree, and the top cluster, as numbers."""
        images = self.images
        labelled = images["label"] >= 0
        accuracy_a = float(images.loc[labelled, "correct_a"].mean()) if labelled.any() else None
        accuracy_b = float(images.loc[labelled, "correct_b"].mean()) if labelled.any() else None
        top = self.clusters.iloc[0] if len(self.clusters) else None
        return {
            "n_images": len(images),
            "n_regions": len(self.regions),
            "n_clusters": len(self.clusters),
            "accuracy_a": accuracy_a,
            "accuracy_b": accuracy_b,
            "agreement": float(images["agree"].mean()),
            "significant_clusters": int(self.clusters["significant"].sum()),
            "top_cluster": None if top is None else int(top["cluster"]),
        }

    def __repr__(self) -> str:
        s = self.summary()

        def percent(value: float | None) -> str:
            return "n/a" if value is None else f"{100 * value:.1f}%"

        lines = [
            f"Comparison of {s['n_images']} images: A {self._model_name('a')} "
            f"(accuracy {percent(s['accuracy_a'])}) vs B {self._model_name('b')} "
            f"(accuracy {percent(s['accuracy_b'])}); they agree on {percent(s['agreement'])}",
            f"{s['n_regions']} salient regions in {s['n_clusters']} clusters, "
            f"{s['significant_clusters']} with a significant difference",
        ]
        for row in self.clusters.head(5).itertuples():
            mark = "*" if row.significant else " "
            lines.append(
                f"  {mark} cluster {row.cluster:>3}: B - A = {row.difference:+.4f} "
                f"[{row.ci_low:+.4f}, {row.ci_high:+.4f}], q = {row.q_value:.3g}, "
                f"{row.n_regions} regions in {row.n_images} images"
            )
        return "\n".join(lines)

    def _model_name(self, side: str) -> str:
        model = self.models.get(side, {})
        return str(model.get("name") or model.get("framework") or model.get("adapter") or "?")

    # -- arrays behind the tables, read back from the store -----------------------------

    def _stored(self, stage: str, key: str) -> Any:
        from imacs.store import Store

        if self.store is None:
            raise InvalidInputError("this comparison has no store to read images and maps from")
        array = Store(self.store).load(stage, key)
        if array is None:
            raise InvalidInputError(
                f"the store {self.store!r} no longer holds {stage} {key}; run the comparison "
                "again with the same store to recompute it"
            )
        return array

    def image(self, index: int) -> Any:
        """Image ``index`` of the dataset, ``(H, W, C)`` in the dataset's pixel range."""
        return self._stored("images", self.images["image_key"].iloc[index])

    def segments(self, index: int) -> Any:
        """The label map ``(H, W)`` of image ``index``; ``regions.region`` indexes it."""
        return self._stored("segments", self.images["segments_key"].iloc[index])

    def attribution(self, index: int, side: str) -> Any:
        """Model ``side``'s ("a" or "b") raw attribution map of image ``index``."""
        if side not in ("a", "b"):
            raise InvalidInputError(f"expected side 'a' or 'b'; got {side!r}")
        return self._stored("attributions", self.images[f"map_key_{side}"].iloc[index])

    # -- saving and loading -------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Write every table as CSV and JSON, and ``comparison.json``, into ``directory``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        for name in TABLES:
            table = getattr(self, name)
            table.to_csv(out / f"{name}.csv", index=False)
            table.to_json(out / f"{name}.json", orient="records", indent=1)
        meta = {
            "format": RESULT_FORMAT,
            "summary": self.summary(),
            "settings": self.settings,
            "models": self.models,
            "dataset": self.dataset,
            "store": self.store,
            "work": self.work,
            "timings": self.timings,
        }
        (out / "comparison.json").write_text(json.dumps(_json_safe(meta), indent=2) + "\n")
        return out

    @classmethod
    def load(cls, directory: str | Path) -> Comparison:
        """Read a comparison written by :meth:`save`."""
        import pandas as pd

        folder = Path(directory)
        meta_path = folder / "comparison.json"
        if not meta_path.is_file():
            raise InvalidInputError(
                f"{str(folder)!r} holds no comparison.json; point at a folder written by "
                "Comparison.save or `imacs compare --out`"
            )
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != RESULT_FORMAT:
            raise InvalidInputError(
                f"{str(meta_path)!r} is in result format {meta.get('format')!r}; this imacs "
                f"reads format {RESULT_FORMAT}. Run the comparison again with this version"
            )
        tables = {}
        for name in TABLES:
            table = pd.read_json(folder / f"{name}.json", orient="records", dtype=False)
            for column in ("correct_a", "correct_b"):
                if column in table:
                    table[column] = table[column].astype("boolean")
            tables[name] = table
        return cls(
            **tables,
            settings=meta["settings"],
            models=meta["models"],
            dataset=meta["dataset"],
            store=meta.get("store"),
        )


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str):
        return _json_safe(value.item())
    return value
