"""The result of a comparison: four tables and what produced them."""

from __future__ import annotations

import importlib.util
import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imacs.errors import InvalidInputError

#: the tables of a comparison, in the order they are saved and described
TABLES = ("clusters", "regions", "images", "classes")
#: the formats :meth:`Comparison.save` can write the tables in
TABLE_FORMATS = ("csv", "json", "parquet")
#: bumped when the saved layout changes; ``Comparison.load`` refuses other versions
RESULT_FORMAT = 1


@dataclass
class Comparison:
    """Two models compared on one dataset.

    Tables (pandas DataFrames):

    ``clusters``
        One row per cluster of salient regions, ranked significant first, then by the
        size of the difference ``|mean_b - mean_a|``: support, both models' totals and
        means, the difference with its bootstrap confidence interval, p- and q-values,
        accuracy of each model on the cluster's images, and the causal check when it
        was run.
    ``regions``
        One row per salient region: its image, cluster, area, both models' attribution
        mass, density and rank, and who selected it.
    ``images``
        One row per image: label, both predictions and targets, correctness, and the
        agreement of the two maps (Spearman, top-k IoU, SSIM, cosine).
    ``classes``
        Per cluster and class: support and both models' mean attribution.

    In a notebook a comparison shows itself as a compact HTML summary; :meth:`save`
    writes the tables, the figures and the HTML report.
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
            f"Comparison of {s['n_images']} images: A {self.model_name('a')} "
            f"(accuracy {percent(s['accuracy_a'])}) vs B {self.model_name('b')} "
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

    def _repr_html_(self) -> str:
        from imacs.report.notebook import summary_html

        return summary_html(self)

    def model_name(self, side: str) -> str:
        """Model ``side``'s ("a" or "b") name, else its file, framework or adapter."""
        model = self.models.get(side, {}) or {}
        for key in ("name", "path", "framework", "adapter"):
            if model.get(key):
                return str(model[key])
        return "?"

    # -- arrays behind the tables, read back from the store -----------------------------

    @property
    def has_store(self) -> bool:
        """Whether the store behind the tables is there to read images and maps from."""
        from imacs.store import MARKER

        return self.store is not None and (Path(self.store) / MARKER).is_file()

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

    def save(
        self,
        directory: str | Path,
        *,
        report: bool = True,
        figures: bool = True,
        formats: Sequence[str] = ("csv", "json"),
        progress: bool = True,
    ) -> Path:
        """Write the tables, the figures and the HTML report into ``directory``.

        Parameters
        ----------
        directory:
            The folder; created if missing.
        report:
            Write ``report.html``, a self-contained page to browse the clusters. It
            shows the images and maps, so it needs the store; without it a warning says
            so and the rest is written.
        figures:
            Write ``summary.png``/``.svg`` and, with the store, ``exemplars.png``/``.svg``.
        formats:
            Table formats among ``"csv"``, ``"json"`` and ``"parquet"`` (which needs
            pyarrow or fastparquet). :meth:`load` reads the JSON or Parquet tables.
        progress:
            Show a progress bar while the report encodes the images.

        ``comparison.json`` holds the settings, the summary and the list of files
        written; it is written as soon as the tables are, so a folder whose figures or
        report failed still loads. Returns ``directory`` as a :class:`~pathlib.Path`.
        """
        formats = _table_formats(formats)
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        for name in TABLES:
            table = getattr(self, name)
            for fmt in formats:
                path = out / f"{name}.{fmt}"
                if fmt == "csv":
                    table.to_csv(path, index=False)
                elif fmt == "json":
                    table.to_json(path, orient="records", indent=1, double_precision=15)
                else:
                    table.to_parquet(path, index=False)
                written.append(path)
        self._write_meta(out, written)
        if figures:
            from imacs.report.figures import save_figures

            written.extend(save_figures(self, out))
        if report and self.has_store:
            from imacs.report.html import write_report

            written.append(Path(write_report(self, out / "report.html", progress=progress)))
        elif report:
            warnings.warn(
                f"no report.html written to {str(out)!r}: the report shows the images and "
                f"maps, which are read from the store, and this comparison's store "
                f"({self.store!r}) is not there. The tables and figures were written; run "
                "the comparison with store=... and keep that folder to get the report",
                UserWarning,
                stacklevel=2,
            )
        self._write_meta(out, written)
        return out

    def _write_meta(self, out: Path, written: list[Path]) -> None:
        meta = {
            "format": RESULT_FORMAT,
            "summary": self.summary(),
            "settings": self.settings,
            "models": self.models,
            "dataset": self.dataset,
            "store": self.store,
            "work": self.work,
            "timings": self.timings,
            "files": [path.relative_to(out).as_posix() for path in written],
        }
        (out / "comparison.json").write_text(json.dumps(_json_safe(meta), indent=2) + "\n")

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
            if (folder / f"{name}.json").is_file():
                table = pd.read_json(folder / f"{name}.json", orient="records", dtype=False)
            elif (folder / f"{name}.parquet").is_file():
                _table_formats(["parquet"])
                table = pd.read_parquet(folder / f"{name}.parquet")
            else:
                raise InvalidInputError(
                    f"{str(folder)!r} holds no {name}.json or {name}.parquet; save the "
                    "comparison with formats including 'json' or 'parquet' to load it again"
                )
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


def _table_formats(formats: Sequence[str]) -> tuple[str, ...]:
    """The table formats asked for, checked before anything is written."""
    if isinstance(formats, str):
        formats = [formats]
    chosen = tuple(dict.fromkeys(str(fmt).lower() for fmt in formats))
    unknown = [fmt for fmt in chosen if fmt not in TABLE_FORMATS]
    if unknown or not chosen:
        raise InvalidInputError(
            f"expected table formats among {', '.join(TABLE_FORMATS)}; got {list(formats)!r}"
        )
    if "parquet" in chosen and not any(
        importlib.util.find_spec(engine) for engine in ("pyarrow", "fastparquet")
    ):
        raise InvalidInputError(
            "writing or reading Parquet tables needs pyarrow (or fastparquet), which is "
            "not installed: `pip install pyarrow`, or save with formats=('csv', 'json')"
        )
    return chosen


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
