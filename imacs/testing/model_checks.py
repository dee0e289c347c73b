"""The conformance suite for model adapters.

Each check takes ``(adapter, images, targets)`` and raises ``AssertionError`` with a
message that says what the contract expects. ``check_model_adapter`` runs them all and
reports every failure at once.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.errors import InvalidInputError
from imacs.testing.reporting import run_checks

Check = Callable[[ModelAdapter, np.ndarray, np.ndarray], None]


def _close(a: np.ndarray, b: np.ndarray, rtol: float) -> bool:
    scale = max(float(np.abs(a).max()), float(np.abs(b).max()), 1e-12)
    return float(np.abs(a - b).max()) <= rtol * scale


def check_predict(adapter: ModelAdapter, images: np.ndarray, targets: np.ndarray) -> None:
    """``predict`` returns finite float32 ``(N, K)`` and records the class count."""
    outputs = adapter.predict(images)
    assert outputs.dtype == np.float32, f"predict returned {outputs.dtype}, expected float32"
    assert outputs.ndim == 2 and len(outputs) == len(images), (
        f"predict returned shape {outputs.shape} for {len(images)} images; expected (N, K)"
    )
    assert np.isfinite(outputs).all(), "predict returned NaN or infinity"
    assert adapter.num_classes == outputs.shape[1], "num_classes does not match predict"


def check_scores(adapter: ModelAdapter, images: np.ndarray, targets: np.ndarray) -> None:
    """``scores`` agrees with ``predict`` for the logit target, and with value_and_gradients."""
    scores = adapter.scores(images, targets)
    assert scores.shape == (len(images),), f"scores has shape {scores.shape}; expected (N,)"
    if adapter.target == "logit":
        expected = adapter.predict(images)[np.arange(len(images)), targets]
        assert _close(scores, expected, 1e-5), "scores differ from predict()[n, target]"
    # a smooth surrogate's values are the surrogate's scores, not the model's
    if "gradients" in adapter.capabilities and adapter.smooth_surrogate is None:
        values, _ = adapter.value_and_gradients(images, targets)
        assert _close(values, scores, 1e-5), "value_and_gradients values differ from scores()"


def check_gradients(adapter: ModelAdapter, images: np.ndarray, targets: np.ndarray) -> None:
    """Gradients are finite float32 with the images' shape, and not all zero."""
    if "gradients" not in adapter.capabilities:
        return
    grads = adapter.gradients(images, targets)
    assert grads.dtype == np.float32, f"gradients returned {grads.dtype}, expected float32"
    assert grads.shape == images.shape, (
        f"gradients have shape {grads.shape}; expected the images' shape {images.shape}"
    )
    assert np.isfinite(grads).all(), "gradients contain NaN or infinity"
    assert np.abs(grads).max() > 0, "gradients are all zero: is the input cut off the graph?"


def check_finite_differences(
    adapter: ModelAdapter,
    images: np.ndarray,
    targets: np.ndarray,
    *,
    step: float | None = None,
    rtol: float = 1e-2,
    n_random_directions: int = 2,
    seed: int = 0,
) -> None:
    """Gradients agree with central finite differences of ``scores``.

    For each image, along the gradient's own direction and along random unit directions
    ``v``: ``(s(x + h v) - s(x - h v)) / 2h`` must equal ``<grad, v>`` within ``rtol``
    times the gradient's norm. Needs a model that is smooth near ``images`` (softplus,
    tanh): at ReLU kinks finite differences are not gradients.

    The contract returns float32 scores, and a forward pass in float32 rounds differently
    on different CPUs (AVX2 and AVX-512 kernels sum in other orders). A difference of two
    such scores over ``2h`` carries that rounding divided by ``2h``, so the allowed error
    adds a float32 rounding budget of ``64 * eps32 * max|s| / h`` to ``rtol`` times the
    gradient's norm: the check then cannot pass on one machine and fail on another.
    """
    if "gradients" not in adapter.capabilities:
        return
    grads = adapter.gradients(images, targets).astype(np.float64)
    h = step if step is not None else 1e-2 * max(float(np.ptp(images)), 1.0)
    rng = np.random.default_rng(seed)
    for i in range(len(images)):
        g = grads[i]
        norm = float(np.linalg.norm(g))
        if norm == 0:
            continue
        directions = [g / norm]
        for _ in range(n_random_directions):
            v = rng.normal(size=g.shape)
            directions.append(v / np.linalg.norm(v))
        probes = np.stack(
            [images[i] + sign * h * v for v in directions for sign in (1.0, -1.0)]
        ).astype(np.float32)
        s = adapter.scores(probes, np.full(len(probes), targets[i])).astype(np.float64)
        rounding = 64 * float(np.finfo(np.float32).eps) * float(np.abs(s).max()) / h
        for k, v in enumerate(directions):
            numeric = (s[2 * k] - s[2 * k + 1]) / (2 * h)
            analytic = float(np.sum(g * v))
            assert abs(numeric - analytic) <= rtol * norm + rounding, (
                f"image {i}, direction {k}: finite difference {numeric:.6g} vs gradient "
                f"{analytic:.6g} (gradient norm {norm:.3g}, step {h:.3g}): the gradient is "
                "not the derivative of scores(); check the preprocessing and target inside "
                "the differentiable call"
            )


def check_batch_size_invariance(
    adapter: ModelAdapter, images: np.ndarray, targets: np.ndarray
) -> None:
    """Splitting the work into batches of one gives the same results as one batch."""
    whole = adapter.predict(images)
    single = adapter.predict(images, batch_size=1)
    assert _close(whole, single, 1e-5), "predict depends on batch_size"
    if "gradients" in adapter.capabilities:
        g_whole = adapter.gradients(images, targets)
        g_single = adapter.gradients(images, targets, batch_size=1)
        assert _close(g_whole, g_single, 1e-5), "gradients depend on batch_size"


def check_determinism(adapter: ModelAdapter, images: np.ndarray, targets: np.ndarray) -> None:
    """Two identical calls give identical answers, and inputs are not modified."""
    before = images.copy()
    first = adapter.predict(images)
    assert np.array_equal(images, before), "the adapter modified the caller's images"
    second = adapter.predict(images)
    assert np.array_equal(first, second), "predict is not deterministic (dropout left on?)"
    if "gradients" in adapter.capabilities:
        g_first = adapter.gradients(images, targets)
        assert np.array_equal(images, before), "the adapter modified the caller's images"
        g_second = adapter.gradients(images, targets)
        assert np.array_equal(g_first, g_second), "gradients are not deterministic"


def check_fingerprint(adapter: ModelAdapter, images: np.ndarray, targets: np.ndarray) -> None:
    """The fingerprint is a stable non-empty string."""
    first, second = adapter.fingerprint(), adapter.fingerprint()
    assert isinstance(first, str) and first, "fingerprint() must return a non-empty string"
    assert first == second, "fingerprint() changes between calls"


def check_bad_input_errors(adapter: ModelAdapter, images: np.ndarray, targets: np.ndarray) -> None:
    """Bad images and targets raise ``InvalidInputError``, not framework errors."""
    cases: dict[str, Callable[[], object]] = {
        "images without a batch axis": lambda: adapter.predict(images[0]),
        "channels-first images": lambda: (
            adapter.predict(images.transpose(0, 3, 1, 2))
            if images.shape[1] not in (1, 2, 3, 4)
            else adapter.predict(images[..., None])
        ),
        "integer images": lambda: adapter.predict(images.astype(np.int32)),
        "NaN images": lambda: adapter.predict(np.where(images == images.flat[0], np.nan, images)),
        "a target out of range": lambda: adapter.scores(images, np.full(len(images), 10**6)),
        "too few targets": lambda: adapter.scores(images, targets[:-1] if len(targets) > 1 else []),
    }
    for what, call in cases.items():
        try:
            call()
        except InvalidInputError:
            continue
        except Exception as exc:
            raise AssertionError(
                f"{what}: raised {type(exc).__name__} ({exc}); expected imacs InvalidInputError"
            ) from exc
        raise AssertionError(f"{what}: no error raised; expected InvalidInputError")


def check_randomised_copy(adapter: ModelAdapter, images: np.ndarray, targets: np.ndarray) -> None:
    """``randomised_copy`` changes a copy, leaves the original alone, and follows its seed.

    For adapters with the ``randomise`` capability: ``parameter_layers()`` names at least
    one layer; a copy with the last one re-initialised predicts differently; the original
    predicts and fingerprints as before; the same seed gives the same copy, another seed
    another; an unknown layer name raises ``InvalidInputError``.
    """
    if "randomise" not in adapter.capabilities:
        return
    layers = adapter.parameter_layers()
    assert isinstance(layers, list) and layers and all(isinstance(n, str) for n in layers), (
        f"parameter_layers() must list the layers with parameters by name; got {layers!r}"
    )
    fingerprint, outputs = adapter.fingerprint(), adapter.predict(images)
    copy = adapter.randomised_copy(layers[-1:], seed=0)
    assert isinstance(copy, ModelAdapter) and copy is not adapter, (
        "randomised_copy() must return a new adapter"
    )
    copied = copy.predict(images)
    assert copied.shape == outputs.shape, "the randomised copy's outputs have another shape"
    assert not _close(copied, outputs, 1e-3), (
        f"re-initialising layer {layers[-1]!r} did not change the outputs"
    )
    assert np.array_equal(adapter.predict(images), outputs), (
        "randomised_copy() changed the original model's outputs: copy the model first"
    )
    assert adapter.fingerprint() == fingerprint, "randomised_copy() changed the original model"
    assert copy.fingerprint() != fingerprint, "the randomised copy has the original's fingerprint"
    again = adapter.randomised_copy(layers[-1:], seed=0)
    assert np.array_equal(again.predict(images), copied), (
        "randomised_copy() with the same seed gave different weights"
    )
    other = adapter.randomised_copy(layers[-1:], seed=1)
    assert not np.array_equal(other.predict(images), copied), (
        "randomised_copy() gave the same weights for seeds 0 and 1"
    )
    try:
        adapter.randomised_copy(["no such layer"], seed=0)
    except InvalidInputError:
        pass
    else:
        raise AssertionError("randomised_copy() accepted an unknown layer name")


def check_layer_geometry(adapter: ModelAdapter, images: np.ndarray, targets: np.ndarray) -> None:
    """``layer_geometry`` describes each convolution and pooling at the images' size.

    For adapters with the ``geometry`` capability: one dict per layer with the fields
    :meth:`~imacs.adapters.base.ModelAdapter.layer_geometry` documents, positive sizes,
    and an arithmetic the padding checker can read.
    """
    if "geometry" not in adapter.capabilities:
        return
    from imacs.spatial.padding import layer_report

    layers = adapter.layer_geometry((images.shape[1], images.shape[2]))
    assert isinstance(layers, list), f"layer_geometry() returned {type(layers).__name__}"
    for layer in layers:
        missing = {"name", "input_size", "kernel", "stride", "padding"} - set(layer)
        assert not missing, f"layer_geometry() entry {layer!r} lacks {sorted(missing)}"
        assert len(layer["input_size"]) == 2 and min(layer["input_size"]) >= 1, (
            f"layer {layer['name']!r} has input size {layer['input_size']}; expected (h, w) >= 1"
        )
        layer_report(layer)  # the checker's arithmetic accepts it


def check_layer_injection(adapter: ModelAdapter, images: np.ndarray, targets: np.ndarray) -> None:
    """Running the network on from a layer's own activations reproduces the whole pass.

    For adapters with the ``injection`` capability, at the default layer: the target
    scores of ``injected_gradients`` equal ``scores``; its gradients equal
    ``layer_gradients``' (when the adapter has ``layers``); one batch and batches of one
    agree; an unknown layer name raises ``InvalidInputError`` naming the model's layers.
    (Derivatives against finite differences need the model in float64, which only the
    adapter's own tests can build.)
    """
    if "injection" not in adapter.capabilities:
        return
    layer = adapter.default_layer(images)
    assert layer is not None, "an adapter with 'injection' must name a default_layer()"
    activations = adapter.layer_activations(images, layer)
    assert activations.dtype == np.float32 and len(activations) == len(images), (
        f"layer_activations returned {activations.dtype} {activations.shape}; expected "
        f"float32 with {len(images)} rows"
    )
    scores, grads = adapter.injected_gradients(activations, targets, layer)
    assert grads.shape == activations.shape, (
        f"injected_gradients returned shape {grads.shape} for activations {activations.shape}"
    )
    if adapter.smooth_surrogate is None:
        assert _close(scores, adapter.scores(images, targets), 1e-4), (
            f"the scores of the network run on from layer {layer!r}'s own activations differ "
            "from scores(): the injected pass does not continue the model"
        )
    # a smooth surrogate's layer_gradients are the surrogate's activations and gradients,
    # while layer_activations are the model's own
    if "layers" in adapter.capabilities and adapter.smooth_surrogate is None:
        expected_activations, expected = adapter.layer_gradients(images, targets, layer)
        assert _close(activations, expected_activations, 1e-5), (
            "layer_activations differ from the activations layer_gradients returns"
        )
        assert _close(grads, expected, 1e-4), (
            f"injected_gradients at layer {layer!r} differ from layer_gradients there"
        )
    _, single = adapter.injected_gradients(activations, targets, layer, batch_size=1)
    assert _close(grads, single, 1e-5), "injected_gradients depend on batch_size"
    names = adapter.layer_names()
    try:
        adapter.injected_gradients(activations, targets, "no such layer")
    except InvalidInputError as exc:
        assert names[0] in str(exc), (
            f"the error for an unknown layer does not list the model's layers: {exc}"
        )
    else:
        raise AssertionError("injected_gradients accepted an unknown layer name")


def check_output_vjp(adapter: ModelAdapter, images: np.ndarray, targets: np.ndarray) -> None:
    """``output_vjp`` is the gradient of a weighted sum of ``predict``'s outputs.

    For adapters with the ``vjp`` capability: the outputs equal ``predict``; one-hot
    weights give ``gradients`` (logit target, no surrogate); the product is linear in
    the weights; batches of one agree with one batch; weights of the wrong shape raise
    ``InvalidInputError``.
    """
    if "vjp" not in adapter.capabilities:
        return
    outputs = adapter.predict(images)
    n, k = outputs.shape
    one_hot = np.eye(k, dtype=np.float32)[targets]
    vjp_outputs, grads = adapter.output_vjp(images, one_hot)
    assert grads.shape == images.shape and grads.dtype == np.float32, (
        f"output_vjp returned gradients {grads.dtype} {grads.shape}; expected float32 "
        f"{images.shape}"
    )
    if adapter.smooth_surrogate is None:
        assert _close(vjp_outputs, outputs, 1e-5), "output_vjp's outputs differ from predict()"
        if adapter.target == "logit":
            assert _close(grads, adapter.gradients(images, targets), 1e-4), (
                "output_vjp with one-hot weights differs from gradients() of the logit"
            )
    rng = np.random.default_rng(0)
    w1, w2 = (rng.normal(size=(n, k)).astype(np.float32) for _ in range(2))
    g1 = adapter.output_vjp(images, w1)[1]
    g2 = adapter.output_vjp(images, w2)[1]
    g12 = adapter.output_vjp(images, w1 + 2 * w2)[1]
    assert _close(g12, g1 + 2 * g2, 1e-4), "output_vjp is not linear in the weights"
    assert _close(adapter.output_vjp(images, w1, batch_size=1)[1], g1, 1e-5), (
        "output_vjp depends on batch_size"
    )
    try:
        adapter.output_vjp(images, w1[:, :1] if k > 1 else w1[:1])
    except InvalidInputError:
        pass
    else:
        raise AssertionError("output_vjp accepted weights of the wrong shape")


ADAPTER_CHECKS: tuple[Check, ...] = (
    check_predict,
    check_scores,
    check_gradients,
    check_finite_differences,
    check_batch_size_invariance,
    check_determinism,
    check_fingerprint,
    check_bad_input_errors,
    check_randomised_copy,
    check_layer_geometry,
    check_layer_injection,
    check_output_vjp,
)


def check_model_adapter(
    adapter: ModelAdapter,
    images: np.ndarray,
    targets: np.ndarray,
    *,
    finite_differences: bool = True,
) -> None:
    """Run every adapter check; raise one ``AssertionError`` listing all failures.

    Use a few (2-4) small images the model accepts and valid targets. Pass
    ``finite_differences=False`` for a model that is not smooth (ReLU) near the images.
    """
    images = np.ascontiguousarray(images, dtype=np.float32)
    targets = np.asarray(targets, dtype=np.int64)
    checks = [
        (check.__name__, partial(check, adapter, images, targets))
        for check in ADAPTER_CHECKS
        if finite_differences or check is not check_finite_differences
    ]
    run_checks(f"adapter {adapter.name!r}", checks)
