"""``imacs.compare``: two models, one dataset, a :class:`Comparison`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from imacs.api import DEFAULT_METHOD, get_method, load_model
from imacs.attribution.base import AttributionMethod
from imacs.comparison.alerts import check_ignored, find_alerts
from imacs.comparison.clustering import Clusterer
from imacs.comparison.executor import Executor
from imacs.comparison.quality import DEFAULT_QUALITY_IMAGES
from imacs.comparison.result import Comparison
from imacs.comparison.runner import TARGETS, ComparisonRun, Settings
from imacs.comparison.scoring import MAP_SIGNS
from imacs.comparison.statistics import (
    DEFAULT_MIN_EFFECT,
    DEFAULT_PERMUTATIONS,
    MIN_PERMUTATIONS,
)
from imacs.components import Component
from imacs.data.sources import as_data_source
from imacs.errors import InvalidInputError
from imacs.parameters import check_choice, check_positive_int, check_seed
from imacs.plugins import get_host
from imacs.quality.base import QualityMeasure
from imacs.store import Store, open_store

DEFAULT_SEGMENTER = "felzenszwalb"
#: the default segmenter's parameters: XRAI's scale, without upscaling small images, with
#: more smoothing and regions of at least 2% of the image (both in pixels of a 224x224
#: image). XRAI's sigma and min_size cut the planted 9x9 watermark of
#: benchmarks/planted_clusters.py into 16 pieces spread over many clusters; these keep it
#: whole (docs/comparison.md, "Defaults measured on planted cases")
DEFAULT_SEGMENTER_PARAMS = {"resize_to": "auto", "sigma": 3.5, "min_size": 1000}
#: the class each model explains unless told otherwise (docs/comparison.md says why)
DEFAULT_TARGETS = "own"
DEFAULT_FEATURIZERS = ("color", "texture", "shape")
DEFAULT_METRICS = ("spearman", "top-k-iou", "ssim", "cosine")


def _component(kind: Any, spec: Any, params: Mapping[str, Any] | None, what: str) -> Any:
    if isinstance(spec, Component):
        if params:
            raise InvalidInputError(
                f"{what} is already an instance; give its parameters to its constructor"
            )
        return spec
    if not isinstance(spec, str):
        raise InvalidInputError(f"expected {what} to be a name or an instance; got {spec!r}")
    return get_host().registry.create(kind, spec, **dict(params or {}))


def _names(spec: Any) -> list[Any]:
    if isinstance(spec, str | Component):
        return [spec]
    return list(spec)


def _params_by_name(
    params: Mapping[str, Mapping[str, Any]] | None, specs: Sequence[Any], what: str
) -> dict[str, Mapping[str, Any]]:
    """``params`` keyed by component name, each name one of the named ``specs``."""
    named = [spec for spec in specs if isinstance(spec, str)]
    unknown = sorted(set(params or {}) - set(named))
    if unknown:
        raise InvalidInputError(
            f"{what} has parameters for {', '.join(map(repr, unknown))}, which the comparison "
            f"does not use; it uses {', '.join(map(repr, named)) or 'no named components'}"
        )
    return dict(params or {})


def _clusterer(
    spec: str | Clusterer, params: Mapping[str, Any] | None, n_clusters: int | None
) -> Clusterer:
    if isinstance(spec, Clusterer):
        if n_clusters is not None:
            raise InvalidInputError("give n_clusters to the clusterer instance, not to compare()")
        return _component("clusterer", spec, params, "clusterer")
    params = dict(params or {})
    if n_clusters is not None:
        check_positive_int(n_clusters, "n_clusters")
        if "n_clusters" in params:
            raise InvalidInputError(
                "give n_clusters once: to compare() or in clusterer_params, not to both"
            )
        params["n_clusters"] = n_clusters
    return _component("clusterer", spec, params, "clusterer")


def _executor(spec: str | Executor | None, params: Mapping[str, Any] | None) -> Executor:
    if spec is None:
        spec = "in-process"
    if not isinstance(spec, str | Executor):
        raise InvalidInputError(
            f"expected executor to be a name such as 'in-process' or 'ray', or an Executor "
            f"instance; got {spec!r}"
        )
    if isinstance(spec, Executor):
        if params:
            raise InvalidInputError(
                "executor is already an instance; give its parameters to its constructor"
            )
        return spec
    executor: Executor = get_host().registry.create("executor", spec, **dict(params or {}))
    return executor


def _spatial_parts(spatial: bool | Sequence[str]) -> tuple[str, ...]:
    from imacs.spatial import PARTS

    if spatial is True:
        return PARTS
    if spatial is False or spatial is None:
        return ()
    chosen = (spatial,) if isinstance(spatial, str) else tuple(spatial)
    unknown = [part for part in chosen if part not in PARTS]
    if unknown:
        raise InvalidInputError(
            f"unknown spatial part(s) {', '.join(map(repr, unknown))}: expected True, False "
            f"or parts among {', '.join(PARTS)}"
        )
    return chosen


def compare(
    model_a: Any,
    model_b: Any,
    data: Any,
    labels: Any = None,
    *,
    method: str | Any = DEFAULT_METHOD,
    method_params: Mapping[str, Any] | None = None,
    segmenter: str | Any = DEFAULT_SEGMENTER,
    segmenter_params: Mapping[str, Any] | None = None,
    featurizer: str | Any | Sequence[str | Any] = DEFAULT_FEATURIZERS,
    featurizer_params: Mapping[str, Mapping[str, Any]] | None = None,
    n_clusters: int | None = None,
    clusterer: str | Clusterer = "kmeans",
    clusterer_params: Mapping[str, Any] | None = None,
    targets: str = DEFAULT_TARGETS,
    map_sign: str = "signed",
    top_k: int | None = 3,
    area_fraction: float | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    metric_params: Mapping[str, Mapping[str, Any]] | None = None,
    causal: str | None = "mean",
    causal_clusters: int = 5,
    causal_max_images: int = 50,
    seed: int = 0,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    alpha: float = 0.05,
    min_effect: float = DEFAULT_MIN_EFFECT,
    batch_size: int = 32,
    class_mapping: Mapping[int, int] | None = None,
    class_names: Sequence[str] | None = None,
    size: tuple[int, int] | None = None,
    on_error: str = "raise",
    embedding_model: str = "a",
    ignore_alerts: Sequence[str] = (),
    spatial: bool | Sequence[str] = True,
    quality: Sequence[str | QualityMeasure] | None = None,
    quality_params: Mapping[str, Mapping[str, Any]] | None = None,
    quality_images: int = DEFAULT_QUALITY_IMAGES,
    store: Store | str | os.PathLike[str] | None = None,
    executor: str | Executor | None = None,
    executor_params: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> Comparison:
    """Compare where two image models' attributions differ, region kind by region kind.

    Parameters
    ----------
    model_a, model_b:
        Adapters, or anything :func:`imacs.load_model` accepts (a ``torch.nn.Module``, a
        ``keras.Model``, a model file). They may come from different frameworks.
    data:
        A folder of images, a ``(N, H, W, C)`` array, a torch ``DataLoader`` or a
        ``tf.data.Dataset`` (see :func:`imacs.data.sources.as_data_source`).
    labels:
        Class indices per image, or a CSV file (``filename,label``) for a folder.
        Sub-folder names of a folder are used when there are no other labels.
    method, method_params:
        The attribution method (a registered name or an instance) and its parameters.
        A method that draws random numbers gets ``seed`` unless ``method_params`` sets one.
    segmenter, segmenter_params:
        The model-free segmenter that cuts every image into regions. By default
        Felzenszwalb with ``resize_to="auto"`` (images smaller than 224x224 are
        segmented at their own size), XRAI's ``scale``, ``sigma=3.5`` and
        ``min_size=1000`` (no region below 2% of the image).
    featurizer, featurizer_params:
        One featurizer or several (names or instances); each one's features are
        standardised and weighted equally. ``"embedding"`` uses ``embedding_model``'s
        inner features. ``featurizer_params`` gives named featurizers their parameters,
        keyed by name: ``{"color": {"bins": 16}}``.
    n_clusters, clusterer, clusterer_params:
        The clusterer: an installed clusterer's name (``"kmeans"``, which chooses the
        number of clusters by silhouette when ``n_clusters`` is ``None``;
        ``"agglomerative"``, 12 clusters unless told; or a plugin's) with its parameters,
        or a :class:`Clusterer` instance. ``n_clusters`` is passed to a named clusterer
        as its parameter of that name.
    targets:
        Which class each model explains: ``"own"`` (the default: each model its own
        prediction), ``"label"``, ``"pred_a"`` or ``"pred_b"``.
    map_sign:
        ``"signed"`` scores regions on the maps as they are, so attribution against the
        target offsets attribution for it; ``"absolute"`` on their magnitudes, so a
        region counts however it moved the output.
    top_k, area_fraction:
        A region is salient for a model when it is among its ``top_k`` densest in the
        image, or, with ``area_fraction``, among the densest that cover that fraction of
        the image. The union over both models is kept.
    causal, causal_clusters, causal_max_images:
        The causal check: hide the regions of the ``causal_clusters`` top-ranked clusters
        (5) on at most ``causal_max_images`` images each (50), filled with their image's
        ``"mean"`` colour (the default) or a ``"blur"``, and measure both models' drop in
        target probability. It costs at most ``2 * causal_clusters * causal_max_images``
        forward passes. ``None`` or ``"none"`` skips it.
    seed:
        Seeds the clustering, the sign-flip test and the method's random numbers.
    n_permutations, alpha, min_effect:
        The per-cluster statistics (docs/comparison.md): random sign vectors of the
        paired sign-flip test (at least 100); the false discovery rate, which also sets
        the intervals' level; the smallest ``|difference|`` (a share of the image's
        attribution) that a significant cluster needs to be marked meaningful.
    class_mapping:
        ``{class of A: class of B}`` when the models' outputs differ in number or order.
    size, on_error, class_names:
        Passed to the data source: resize images to ``(height, width)``; ``"raise"`` or
        ``"skip"`` unreadable files; names of the label indices.
    metrics, metric_params:
        The agreement metrics of each image's two maps (names or instances), and the
        named metrics' parameters keyed by name: ``{"top-k-iou": {"fraction": 0.1}}``.
    ignore_alerts:
        Codes of the checks not to run on the result (``comparison.alerts``); see
        :data:`imacs.comparison.alerts.CHECKS` and docs/comparison.md, "Alerts".
    spatial:
        The "where in the frame" analysis (docs/spatial.md): ``True`` runs every part,
        ``False`` none, or name the parts among ``"positional"`` (positional attribution
        maps from the stored maps), ``"padding"`` (uneven padding of each model at the
        images' size), ``"activations"`` (mean activation maps per layer) and
        ``"blind_spots"`` (the blind-spot probe). Kept in ``comparison.spatial``.
    quality, quality_params, quality_images:
        Quality measures of each model's maps (docs/quality.md), names such as
        ``["deletion", "model-randomisation"]`` or instances, with the named ones'
        parameters keyed by name: ``{"deletion": {"n_steps": 16}}``. They run on
        ``quality_images`` images (32) drawn under ``seed``, the same for both models,
        with the maps the comparison made; ``comparison.quality`` holds one row per model
        and measure with a bootstrap interval at the level ``1 - alpha``, and the
        ``sanity-check`` alert reads its ``model-randomisation`` rows. Off by default
        because they are costly: a perturbation measure makes ``n_steps + 1`` or more
        forward passes per image, and the randomisation test attributes every image
        again once per randomised layer (``len(model.parameter_layers())`` times).
    store:
        Where results are kept and found again: a folder, a URL that fsspec reaches
        (``s3://bucket/imacs-store``; :mod:`imacs.remote_store`) or a
        :class:`~imacs.store.Store`; by default ``$IMACS_STORE`` or
        ``~/.cache/imacs/store``.
    executor, executor_params:
        Where the attribution tasks and the per-image tasks (segment, score, featurize)
        run: ``"in-process"`` (the default), an installed executor's name with its
        parameters (``executor="ray"``, ``executor_params={"address": "auto"}`` with the
        ``imacs-ray`` plugin; docs/scale-out.md), or an
        :class:`~imacs.comparison.executor.Executor` instance. The tables do not depend
        on it. An executor that runs tasks in other processes loads the models there
        from what :func:`imacs.load_model` was given, so give models as files (or a
        state dict with its factory), not as in-memory objects.
    """
    check_seed(seed)
    check_positive_int(batch_size, "batch_size")
    check_positive_int(n_permutations, "n_permutations")
    if n_permutations < MIN_PERMUTATIONS:
        # the statistics refuse fewer, and they come after the hours of attribution
        raise InvalidInputError(
            f"expected n_permutations to be an int >= {MIN_PERMUTATIONS}; got {n_permutations!r}"
        )
    check_positive_int(causal_max_images, "causal_max_images")
    check_positive_int(causal_clusters, "causal_clusters")
    check_choice(embedding_model, "embedding_model", ("a", "b"))
    ignored = check_ignored(ignore_alerts)
    spatial_parts = _spatial_parts(spatial)
    check_positive_int(quality_images, "quality_images")
    quality_specs = [] if quality is None else _names(quality)
    params_of = _params_by_name(quality_params, quality_specs, "quality_params")
    measures = tuple(
        _component("measure", m, params_of.get(m) if isinstance(m, str) else None, "measure")
        for m in quality_specs
    )
    if causal is not None:
        check_choice(causal, "causal", ("mean", "blur", "none"))
        causal = None if causal == "none" else causal
    if (top_k is None) == (area_fraction is None):
        raise InvalidInputError(
            "give exactly one of top_k (regions per image and model) and area_fraction "
            "(share of the image); to use area_fraction, pass top_k=None"
        )
    if top_k is not None:
        check_positive_int(top_k, "top_k")
    if area_fraction is not None and not 0 < area_fraction <= 1:
        raise InvalidInputError(f"expected area_fraction in (0, 1]; got {area_fraction!r}")
    if not 0 < alpha < 1:
        raise InvalidInputError(f"expected alpha in (0, 1); got {alpha!r}")
    if isinstance(min_effect, bool) or not isinstance(min_effect, int | float) or min_effect < 0:
        raise InvalidInputError(f"expected min_effect to be a number >= 0; got {min_effect!r}")

    params = dict(method_params or {})
    if isinstance(method, str):
        cls: type[AttributionMethod] = get_host().registry.get("attribution_method", method)
        accepted = cls.param_names()
        if "seed" in accepted and "seed" not in params:
            params["seed"] = seed
    attribution = get_method(method, **params)
    if segmenter == DEFAULT_SEGMENTER and segmenter_params is None:
        segmenter_params = DEFAULT_SEGMENTER_PARAMS
    segments = _component("segmenter", segmenter, segmenter_params, "segmenter")
    featurizer_specs = _names(featurizer)
    params_of = _params_by_name(featurizer_params, featurizer_specs, "featurizer_params")
    featurizers = [
        _component("featurizer", f, params_of.get(f) if isinstance(f, str) else None, "featurizer")
        for f in featurizer_specs
    ]
    if not featurizers:
        raise InvalidInputError("give at least one featurizer")
    metric_specs = _names(metrics)
    params_of = _params_by_name(metric_params, metric_specs, "metric_params")
    agreement = [
        _component("metric", m, params_of.get(m) if isinstance(m, str) else None, "metric")
        for m in metric_specs
    ]

    adapter_a, adapter_b = load_model(model_a), load_model(model_b)
    runs_on = _executor(executor, executor_params)
    runs_on.check_models({"a": adapter_a, "b": adapter_b})
    for side, adapter in (("A", adapter_a), ("B", adapter_b)):
        # before the comparison's hours of work, not after them
        for measure in measures:
            for capability in measure.requires:
                adapter.require(capability, by=f"quality measure {measure.name!r} on model {side}")
    source = as_data_source(
        data,
        labels,
        size=size,
        on_error=on_error,  # type: ignore[arg-type]
        class_names=list(class_names) if class_names is not None else None,
    )
    check_choice(targets, "targets", TARGETS)
    check_choice(map_sign, "map_sign", MAP_SIGNS)
    settings = Settings(
        method=attribution,
        segmenter=segments,
        featurizers=featurizers,
        clusterer=_clusterer(clusterer, clusterer_params, n_clusters),
        metrics=agreement,
        targets=targets,
        map_sign=map_sign,
        top_k=top_k,
        area_fraction=area_fraction,
        seed=seed,
        n_permutations=n_permutations,
        alpha=alpha,
        min_effect=min_effect,
        causal=causal,
        causal_clusters=causal_clusters,
        causal_max_images=causal_max_images,
        batch_size=batch_size,
        class_mapping=dict(class_mapping) if class_mapping is not None else None,
        embedding_model=embedding_model,
        ignore_alerts=ignored,
        spatial=spatial_parts,
        quality=measures,
        quality_images=quality_images,
    )
    opened = open_store(store)
    runs_on.check_store(opened)  # before any work, as check_models
    run = ComparisonRun(
        adapter_a,
        adapter_b,
        source,
        settings,
        opened,
        executor=runs_on,
        progress=progress,
    )
    comparison = run.run()
    comparison.alerts = find_alerts(comparison, ignore=ignored)
    return comparison
