"""The result of a comparison: four tables and what produced them."""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import json
import math
import os
import shutil
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imacs.comparison.alerts import Alert
from imacs.errors import InvalidInputError, OutputError, StoreError
from imacs.jsonable import json_ready

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
        One row per cluster of salient regions, ranked by how far its interval lies from
        0, then by ``|difference|``: support, both models' mean share of each image's
        attribution on the cluster, their difference with an FCR-adjusted interval from
        the paired sign-flip test, p- and q-values, whether it is significant and
        meaningful (at least ``min_effect``), accuracy of each model on the cluster's
        images, and the causal check when it was run.
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
    #: what the run's own checks found wrong with it (:mod:`imacs.comparison.alerts`)
    alerts: list[Alert] = field(default_factory=list)
    #: the "where in the frame" analysis (:class:`imacs.spatial.analysis.SpatialResult`)
    spatial: Any = field(default=None, compare=False)
    #: the quality measures of each model's maps (:mod:`imacs.comparison.quality`): a
    #: DataFrame with one row per model side and measure, or ``None`` when none ran
    quality: Any = field(default=None, compare=False)

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
            "meaningful_clusters": int(self.clusters["meaningful"].sum())
            if "meaningful" in self.clusters
            else None,
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
            f"{s['significant_clusters']} with a significant difference"
            + (
                f", {s['meaningful_clusters']} of at least {self.settings.get('min_effect')} (*)"
                if s["meaningful_clusters"] is not None
                else ""
            ),
        ]
        from imacs.comparison.naming import names_of

        names = names_of(self)
        for row in self.clusters.head(5).itertuples():
            mark = "*" if getattr(row, "meaningful", row.significant) else " "
            lines.append(
                f"  {mark} cluster {row.cluster:>3} ({names.get(int(row.cluster), '?')}): "
                f"B - A = {row.difference:+.4f} "
                f"[{row.ci_low:+.4f}, {row.ci_high:+.4f}], q = {row.q_value:.3g}, "
                f"{row.n_regions} regions in {row.n_images} images"
                + (
                    f"; hidden, target probability drops by A {row.causal_drop_a:+.2f}, "
                    f"B {row.causal_drop_b:+.2f}"
                    if getattr(row, "causal_images", 0)
                    else ""
                )
            )
        if self.alerts:
            codes = ", ".join(alert.code for alert in self.alerts)
            lines.append(f"{len(self.alerts)} alert(s), see comparison.alerts: {codes}")
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
        from imacs.store import MARKER, is_remote

        if self.store is None:
            return False
        if not is_remote(self.store):
            return (Path(self.store) / MARKER).is_file()
        try:
            self._opened_store()
        except StoreError:
            return False
        return True

    def _opened_store(self) -> Any:
        from imacs.store import open_store

        # opened once: a remote store's marker is a request, an image's arrays are three
        opened = self.__dict__.get("_store_opened")
        if opened is None or opened.location != self.store:
            opened = open_store(self.store, create=False)
            self.__dict__["_store_opened"] = opened
        return opened

    def _stored(self, stage: str, key: str) -> Any:
        if self.store is None:
            raise InvalidInputError("this comparison has no store to read images and maps from")
        array = self._opened_store().load(stage, key)
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
            The folder; created if missing. It must be new, empty, or the output of an
            earlier save (it holds ``comparison.json``), whose files this save replaces;
            other files and folders beside them, such as a store, are left alone. A
            non-empty folder that is not a comparison output is refused.
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

        The folder holds either the previous output or the new one, whole, whatever
        happens to the process: the files are written into a hidden folder inside it
        and take the place of the previous output's files only once all are written.
        A save that was killed while they were being moved in is finished by the next
        :meth:`save` or :meth:`load`. ``comparison.json`` holds the settings, the
        summary, the files written and their SHA-256 digests, which :meth:`load` checks.
        When the figures or the report fail, the tables are still saved (and the
        previous output's figures and report removed) before the error is raised. A
        folder that cannot be written (a full disk, no permission) raises
        :class:`~imacs.errors.OutputError` and keeps its previous output.
        Returns ``directory`` as a :class:`~pathlib.Path`.
        """
        formats = _table_formats(formats)
        out = Path(directory)
        if out.exists() and not out.is_dir():
            raise InvalidInputError(
                f"cannot save the comparison into {str(out)!r}: it is a file, not a folder"
            )
        try:
            out.mkdir(parents=True, exist_ok=True)
            with _folder_lock(out):
                _finish_interrupted_save(out)
                _refuse_foreign_folder(out)
                staging = out / _STAGING
                staging.mkdir()
                try:
                    failure = self._write_files(staging, report, figures, formats, progress)
                    _commit(out, staging)
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
        except OSError as exc:
            raise _output_error(out, exc) from exc
        if isinstance(failure, OSError):
            raise _output_error(out, failure, tables_saved=True) from failure
        if failure is not None:
            raise failure
        return out

    def _write_files(
        self,
        folder: Path,
        report: bool,
        figures: bool,
        formats: Sequence[str],
        progress: bool,
    ) -> Exception | None:
        """Write every file of the output and ``comparison.json`` into ``folder``.

        Returns the error of the figures or the report, if one failed: the tables and
        whatever else was written are saved all the same, so a long comparison is not
        lost to a plotting problem.
        """
        written: list[Path] = []
        for name in TABLES:
            table = getattr(self, name)
            for fmt in formats:
                path = folder / f"{name}.{fmt}"
                if fmt == "csv":
                    table.to_csv(path, index=False)
                elif fmt == "json":
                    _infinities_as_text(table).to_json(
                        path, orient="records", indent=1, double_precision=15
                    )
                else:
                    table.to_parquet(path, index=False)
                written.append(path)
        if self.spatial is not None:
            written.extend(self.spatial.save(folder))
        if self.quality is not None:
            from imacs.comparison.quality import save_quality

            written.extend(save_quality(self.quality, folder))
        failure: Exception | None = None
        try:
            if figures:
                from imacs.report.figures import save_figures

                written.extend(save_figures(self, folder))
            if report and self.has_store:
                from imacs.report.html import write_report

                written.append(Path(write_report(self, folder / "report.html", progress=progress)))
            elif report:
                warnings.warn(
                    f"no report.html written to {str(folder.parent)!r}: the report shows the "
                    "images and maps, which are read from the store, and this comparison's "
                    f"store ({self.store!r}) is not there. The tables and figures were "
                    "written; run the comparison with store=... and keep that folder to get "
                    "the report",
                    UserWarning,
                    stacklevel=3,
                )
        except Exception as exc:
            failure = exc
        self._write_meta(folder, written)
        return failure

    def _write_meta(self, folder: Path, written: list[Path]) -> None:
        names = [path.relative_to(folder).as_posix() for path in written]
        meta = {
            "format": RESULT_FORMAT,
            "summary": self.summary(),
            "settings": self.settings,
            "models": self.models,
            "dataset": self.dataset,
            "store": self.store,
            "work": self.work,
            "timings": self.timings,
            "alerts": [alert.as_dict() for alert in self.alerts],
            "files": names,
            "sha256": {name: _file_digest(folder / name) for name in names},
        }
        (folder / _META).write_text(json.dumps(json_ready(meta), indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> Comparison:
        """Read a comparison written by :meth:`save`.

        Every file ``comparison.json`` lists a digest for is checked: a file that was
        changed after the save (edited, damaged, or written by another save) is refused
        with an error that names it.
        """
        import pandas as pd

        folder = Path(directory)
        committed = (folder / _COMMITTED).is_dir()
        unfinished = (folder / _STAGING).is_dir()
        if committed or unfinished:
            try:
                # a save still writing its files is left to finish; one that was killed
                # is finished (after its commit) or cleared away (before it)
                with _folder_lock(folder, wait=committed) as held:
                    if held:
                        _finish_interrupted_save(folder)
            except OSError as exc:
                raise InvalidInputError(
                    f"a save into {str(folder)!r} was interrupted while its files were being "
                    f"moved into place, and finishing it failed ({exc}); make the folder "
                    "writable and load it again, or save the comparison again"
                ) from exc
        meta_path = folder / _META
        if not meta_path.is_file():
            raise InvalidInputError(
                f"{str(folder)!r} holds no comparison.json"
                + (
                    ": a save into it did not finish (it was interrupted, or is still "
                    "running); save again"
                    if unfinished
                    else "; point at a folder written by Comparison.save or `imacs compare --out`"
                )
            )
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise InvalidInputError(
                f"{str(meta_path)!r} is not readable JSON ({exc}); save the comparison again"
            ) from exc
        if not isinstance(meta, dict) or meta.get("format") != RESULT_FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else None
            raise InvalidInputError(
                f"{str(meta_path)!r} is in result format {found!r}; this imacs "
                f"reads format {RESULT_FORMAT}. Run the comparison again with this version"
            )
        _check_digests(folder, meta.get("sha256") or {})
        tables = {}
        for name in TABLES:
            if (folder / f"{name}.json").is_file():
                table = pd.read_json(folder / f"{name}.json", orient="records", dtype=False)
                table = _infinities_from_text(table)
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
        spatial = None
        if (folder / "spatial.json").is_file():
            from imacs.spatial.analysis import SpatialResult

            spatial = SpatialResult.load(folder)
        from imacs.comparison.quality import load_quality

        return cls(
            **tables,
            settings=meta["settings"],
            models=meta["models"],
            dataset=meta["dataset"],
            store=meta.get("store"),
            alerts=[Alert.from_dict(alert) for alert in meta.get("alerts", [])],
            spatial=spatial,
            quality=load_quality(folder),
        )


# -- the output folder, replaced whole ---------------------------------------------------
#
# A save writes every file into _STAGING inside the output folder, then renames _STAGING
# to _COMMITTED: that rename is the moment the new output exists. Its files are then moved
# over the previous output's ones, comparison.json last. A kill before the rename leaves
# the previous output and a _STAGING that the next save removes; a kill after it leaves
# _COMMITTED, which the next save or load moves in first. Both names are ours: a folder
# holding them is never a user's.

_META = "comparison.json"
_STAGING = ".imacs-save"
_COMMITTED = ".imacs-saved"


@contextmanager
def _folder_lock(folder: Path, *, wait: bool = True) -> Iterator[bool]:
    """Lock ``folder`` so that saves into it take turns; yields whether the lock is held.

    An advisory ``flock`` on the folder itself: the kernel releases it when the holder
    exits, however it exits, so a killed save never leaves a lock behind. With
    ``wait=False`` a folder another process is saving into yields ``False`` at once.
    Where there are no such locks (Windows, some network file systems) saves into one
    folder must not overlap; the digests in ``comparison.json`` still catch a folder
    they mixed up.
    """
    try:
        import fcntl
    except ImportError:
        yield True
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        except OSError:  # a file system without locks
            pass
        yield True
    finally:
        os.close(descriptor)


def _refuse_foreign_folder(out: Path) -> None:
    """Refuse a non-empty folder that is not a comparison output (a typo, a user's files)."""
    from imacs.store import MARKER

    if (out / _META).is_file():
        return
    # a store kept inside the output folder, as the demo keeps it, is not in the way
    foreign = sorted(
        entry.name
        for entry in out.iterdir()
        if entry.name not in (_STAGING, _COMMITTED) and not (entry / MARKER).is_file()
    )
    if foreign:
        shown = ", ".join(repr(name) for name in foreign[:3])
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise InvalidInputError(
            f"cannot save the comparison into {str(out)!r}: it holds {shown}{more} and no "
            "comparison.json, so it is not the output of an earlier save, and saving could "
            "overwrite those files. Save into a new or empty folder"
        )


#: what a failed write's errno means, and what to do about it
_WRITE_FAILURES = {
    errno.ENOSPC: "its disk is full: free some space, or save elsewhere",
    errno.EDQUOT: "the disk quota is used up: free some space, or save elsewhere",
    errno.EROFS: "it is on a read-only file system: save elsewhere",
    errno.EACCES: "this user may not write there: fix its permissions, or save elsewhere",
    errno.EPERM: "this user may not write there: fix its permissions, or save elsewhere",
}


def _output_error(out: Path, exc: OSError, *, tables_saved: bool = False) -> OutputError:
    reason = _WRITE_FAILURES.get(exc.errno or 0, f"of an error ({exc}): save elsewhere")
    if tables_saved:
        return OutputError(
            f"the tables were saved into {str(out)!r}, but not the figures or the report, "
            f"because {reason}"
        )
    if (out / _COMMITTED).is_dir():
        held = "the new output is saved, and the next save or load moves it into place"
    else:
        held = "the folder holds its previous output, if it had one"
    return OutputError(f"cannot save the comparison into {str(out)!r} because {reason}; {held}")


def _commit(out: Path, staging: Path) -> None:
    for path in staging.iterdir():
        _sync(path)
    _sync(staging)
    os.replace(staging, out / _COMMITTED)
    _sync(out)
    _finish_interrupted_save(out)


def _finish_interrupted_save(out: Path) -> None:
    """Finish a save killed after its commit, clear one killed before it; idempotent.

    Only while holding the folder's lock: no other save is writing into it then.
    """
    shutil.rmtree(out / _STAGING, ignore_errors=True)
    committed = out / _COMMITTED
    if not committed.is_dir():
        return
    new_meta = committed / _META
    if new_meta.is_file():  # else every file, comparison.json last, was moved already
        stale = set(_listed_files(out / _META)) - set(_listed_files(new_meta))
        for name in sorted(stale):
            if not (out / name).is_dir():
                (out / name).unlink(missing_ok=True)
        for path in sorted(committed.iterdir()):
            if path.name != _META:
                os.replace(path, out / path.name)
        os.replace(new_meta, out / _META)
        _sync(out)
    shutil.rmtree(committed, ignore_errors=True)


def _listed_files(meta_path: Path) -> list[str]:
    """The files a ``comparison.json`` lists, or none when it cannot be read."""
    try:
        files = json.loads(meta_path.read_text()).get("files", [])
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return []
    return _plain_names(files)


def _plain_names(names: Any) -> list[str]:
    """The bare file names among ``names``: a damaged or hostile ``comparison.json`` must
    not make a save delete, or a load read, anything outside the output folder."""
    return [
        name
        for name in names
        if isinstance(name, str)
        and name not in ("", ".", "..", _META)
        and Path(name).name == name
        and "\\" not in name
    ]


def _check_digests(folder: Path, digests: Any) -> None:
    if not isinstance(digests, dict):
        raise InvalidInputError(
            f"{str(folder / _META)!r} records its files' digests in an unexpected form; "
            "save the comparison again"
        )
    for name in _plain_names(digests):
        path = folder / name
        if path.is_file() and _file_digest(path) != digests[name]:
            raise InvalidInputError(
                f"{str(path)!r} does not match the digest comparison.json records for it: "
                "it changed after the comparison was saved (edited, damaged, or written by "
                "another save into the same folder). Save the comparison again"
            )


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sync(path: Path) -> None:
    """Flush ``path`` (a file or a folder's entries) to disk, where the system allows it.

    Without it a power cut right after a rename could leave the new names pointing at
    empty files; a killed process needs none of it.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


#: how the JSON tables spell infinities, which JSON has no number for
_INFINITIES = {"Infinity": math.inf, "-Infinity": -math.inf}


def _infinities_as_text(table: Any) -> Any:
    """``table`` with each infinite float as ``"Infinity"`` or ``"-Infinity"``.

    pandas writes infinities to JSON as null, which reads back as NaN: a confidence bound
    that no test could narrow would come back as a missing one.
    """
    import numpy as np

    infinite = [
        column
        for column in table.columns
        if table[column].dtype.kind == "f" and np.isinf(table[column].to_numpy()).any()
    ]
    if not infinite:
        return table
    table = table.copy()
    for column in infinite:
        values = table[column].to_numpy()
        text = values.astype(object)
        text[np.isposinf(values)] = "Infinity"
        text[np.isneginf(values)] = "-Infinity"
        table[column] = text
    return table


def _infinities_from_text(table: Any) -> Any:
    """Undo :func:`_infinities_as_text` on a table read from JSON."""
    for column in [c for c in table.columns if table[c].dtype.kind == "O"]:
        values = table[column]
        spelled = values.isin(list(_INFINITIES))
        others = values[~spelled]
        numbers = others.map(lambda v: v is None or isinstance(v, int | float)).all()
        if spelled.any() and numbers and not others.map(lambda v: isinstance(v, bool)).any():
            table[column] = values.replace(_INFINITIES).astype("float64")
    return table


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
