"""LTX: Learning to Explain.

Barkan, Asher, Eshel, Elisha, Koenigstein. "Learning to Explain: A Model-Agnostic
Framework for Explaining Black Box Models". ICDM 2023, arXiv:2310.16584. Released code:
github.com/LTX-Code/LTX.

An *explainer* network draws a mask ``m`` in [0, 1] for an image ``x``; the explained
model ``f`` (frozen) sees ``x * m``, and the explainer is trained to keep ``f``'s class on
the masked image while keeping the mask small:

    L = CE(f(x * m), c) + mask_coef * BCEWithLogits(m_tokens, 0),

with ``m_tokens`` the explainer's low-resolution mask after its sigmoid (the released
code's quirk: BCE-with-logits of post-sigmoid values, kept by ``mask_loss="bce"``;
``"l1"`` uses ``mean(m_tokens)``), upsampled bilinearly to the image. Two stages:

1. **pre-training** (pLTX) on a dataset, the class ``c`` being the given target or, for
   :meth:`LTX.pretrain` without targets, ``f``'s top class;
2. **fine-tuning** a copy on each image alone, one step per epoch, scoring the mask after
   every epoch by the positive-perturbation AUC (imacs's ``"positive-perturbation"``,
   the Barkan POS measure) and keeping the mask of the best (lowest) epoch; it stops
   early once that AUC is below ``stop_auc``.

Both stages use AdamW with a linear schedule whose warm-up is a fifth of the steps, as
the released code's ``get_linear_schedule_with_warmup``. The gradient of ``CE`` with
respect to the masked image comes from the adapter's ``output_vjp`` with weights
``softmax(f(x * m)) - onehot(c)`` (the outputs are taken as logits), so the explained
model may be PyTorch, Keras or anything with the ``vjp`` capability; only the explainer
is PyTorch. The released explainers are a ViT or a ResNet/DenseNet backbone with
pre-trained weights; here it is a small CNN (three 3x3 convolutions, the second of
stride 2, a 1x1 head), trained from a seed, so LTX runs without downloads.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.attribution.base import AttributionMethod, AttributionResult, DatasetView
from imacs.errors import InvalidInputError
from imacs.parameters import check_choice, check_positive_int, check_seed
from imacs.quality.perturbation_tests import PositivePerturbation
from imacs.store import Store, array_digest, make_key

MASK_LOSSES = ("bce", "l1")
#: the store stage holding pre-trained explainer weights
STAGE = "ltx-explainer"
#: pre-trained explainer weights by key, when no store is given
_MEMORY: dict[str, np.ndarray] = {}
#: parameters that change the pre-trained explainer (the others act after it)
_PRETRAIN_PARAMS = ("pretrain_epochs", "pretrain_batch", "lr", "mask_coef", "mask_loss", "width")


@dataclass
class LTXExplanation:
    """Everything LTX computed for a set of images.

    ``masks`` ``(N, H, W)`` in [0, 1] (the best epoch's); ``objective`` ``(N, E)`` the
    fine-tuning objective at each epoch's step (NaN after an early stop); ``pos_auc``
    ``(N, E)`` the positive-perturbation AUC of each epoch's mask; ``best_epoch`` ``(N,)``;
    ``pretrain_objective`` the mean objective of each pre-training epoch (empty when the
    explainer came from a cache).
    """

    masks: np.ndarray
    objective: np.ndarray
    pos_auc: np.ndarray
    best_epoch: np.ndarray
    pretrain_objective: np.ndarray


def _explainer(channels: int, width: int, seed: int) -> Any:
    import torch
    from torch import nn

    class Explainer(nn.Module):
        """A small CNN: image ``(N, C, H, W)`` -> tokens ``(N, 1, h, w)`` and mask ``(N, H, W)``."""

        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(channels, width, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(width, width, 3, padding=1, stride=2),
                nn.ReLU(),
                nn.Conv2d(width, width, 3, padding=1),
                nn.ReLU(),
            )
            self.head = nn.Conv2d(width, 1, 1)

        def forward(self, x: Any) -> tuple[Any, Any]:
            mean = x.mean(dim=(2, 3), keepdim=True)
            std = x.std(dim=(2, 3), keepdim=True)
            tokens = torch.sigmoid(self.head(self.body((x - mean) / (std + 1e-6))))
            mask = nn.functional.interpolate(
                tokens, size=x.shape[2:], mode="bilinear", align_corners=False
            )
            return tokens, mask[:, 0]

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Explainer()


def _schedule(optimiser: Any, total: int) -> Any:
    """Linear warm-up over a fifth of ``total`` steps, then linear decay to 0."""
    import torch

    warmup = total // 5

    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimiser, factor)


class LTX(AttributionMethod):
    """Learning to Explain: a pre-trained explainer network, fine-tuned on each image.

    Parameters
    ----------
    pretrain_epochs:
        Epochs of pre-training. Default 30 (the released README's ``--n-epochs 30``).
    finetune_epochs:
        Epochs (one step each) of fine-tuning per image. Default 25 (the released config's
        ``n_epochs_to_optimize_stage_b``).
    lr:
        AdamW's peak learning rate in both stages. Default 2e-3 (the released config).
    mask_coef:
        Weight of the mask-size term. Default 50 (the released config's mask-loss
        multiplier).
    mask_loss:
        ``"bce"`` (default, the released code: BCE-with-logits of the post-sigmoid tokens
        against 0) or ``"l1"`` (their mean).
    pretrain_batch:
        Images per pre-training step. Default 32 (the released config); fine-tuning uses
        one image, as the released code.
    stop_auc:
        Fine-tuning stops once an epoch's positive-perturbation AUC is below this.
        Default 6.0 (the released ``POS_AUC_STOP_VALUE``).
    width:
        Channels of the explainer's convolutions. Default 16: a CPU-sized explainer, not
        the paper's (a ViT or ResNet backbone with pre-trained weights).
    seed:
        Seeds the explainer's initial weights and the pre-training order.
    store:
        A store (a path or an :class:`imacs.store.Store`) in which pre-trained explainer
        weights are cached, keyed by the model's fingerprint, the pre-training images and
        targets and the parameters above; ``None`` (default) uses the store a comparison
        passes to :meth:`prepare`, or, without one, memory for the process.

    Pre-training: :meth:`prepare` (the attribution-method hook that ``imacs.compare`` and
    ``imacs attribute`` call once with the whole dataset) or :meth:`pretrain` (on images
    in memory) pre-trains the explainer of a model, and later calls of :meth:`attribute`
    for that model fine-tune from it. Without either, :meth:`attribute` pre-trains on
    the images it is given, for that call only; so ``imacs.attribute(model, images,
    targets, method="ltx")`` pre-trains once on all its images.

    Cost, in passes of the explained model (``P`` pre-training images, ``E_p`` =
    ``pretrain_epochs``, ``E`` = ``finetune_epochs``): pre-training ``E_p * P`` forward
    passes and ``E_p * P`` forward-and-backward passes (``predict`` for the loss, then
    ``output_vjp`` for its gradient), once per model and data (then cached); fine-tuning,
    per image, ``E`` forward and ``E`` forward-and-backward passes plus ``10 E`` forward
    passes for the positive-perturbation AUC of each epoch's mask (fewer after an early
    stop). The explainer itself costs one forward and backward pass per step.
    """

    name = "ltx"
    citation = "Barkan et al., Learning to Explain, ICDM 2023, arXiv:2310.16584"
    requires = frozenset({"vjp"})
    version = "2"

    def __init__(
        self,
        *,
        pretrain_epochs: int = 30,
        finetune_epochs: int = 25,
        lr: float = 2e-3,
        mask_coef: float = 50.0,
        mask_loss: str = "bce",
        pretrain_batch: int = 32,
        stop_auc: float = 6.0,
        width: int = 16,
        seed: int = 0,
        store: Store | str | os.PathLike[str] | None = None,
    ):
        check_positive_int(pretrain_epochs, "pretrain_epochs")
        check_positive_int(finetune_epochs, "finetune_epochs")
        check_positive_int(pretrain_batch, "pretrain_batch")
        check_positive_int(width, "width")
        check_choice(mask_loss, "mask_loss", MASK_LOSSES)
        check_seed(seed)
        for value, label in ((lr, "lr"), (mask_coef, "mask_coef"), (stop_auc, "stop_auc")):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InvalidInputError(f"expected {label} to be a number >= 0; got {value!r}")
        if store is not None and not isinstance(store, Store | str | os.PathLike):
            raise InvalidInputError(
                "expected store to be a path, an imacs.store.Store or None; got "
                f"{type(store).__name__}"
            )
        self.pretrain_epochs = pretrain_epochs
        self.finetune_epochs = finetune_epochs
        self.lr = lr
        self.mask_coef = mask_coef
        self.mask_loss = mask_loss
        self.pretrain_batch = pretrain_batch
        self.stop_auc = stop_auc
        self.width = width
        self.seed = seed
        self.store = store
        #: per model fingerprint: the pre-training key, the explainer's weights and the
        #: pre-training record (empty when the weights came from a cache)
        self._prepared: dict[str, tuple[str, np.ndarray, np.ndarray]] = {}

    # -- public ---------------------------------------------------------------------------

    def prepare(
        self,
        model: ModelAdapter,
        data: DatasetView,
        *,
        batch_size: int = 32,
        store: Store | None = None,
    ) -> str:
        """Pre-train (or load from the cache) the explainer of ``model`` on all of ``data``.

        The hook :meth:`AttributionMethod.prepare`: ``imacs.compare`` and ``imacs
        attribute`` call it once with the whole dataset, so every map fine-tunes from one
        explainer whatever the tasks. The weights are cached in this method's ``store``,
        else in ``store``, else in memory, under the returned key, which names the model's
        fingerprint, ``data.key``, the targets, the pre-training parameters and the seed.
        Later calls of :meth:`attribute` with this model fine-tune from this explainer.
        """
        model.require("vjp", by=f"attribution method {self.name!r}")
        if not isinstance(data, DatasetView):
            raise InvalidInputError(
                f"expected the data as an imacs.attribution.DatasetView; got "
                f"{type(data).__name__}: build one with DatasetView.from_arrays(images, "
                "targets), or call pretrain(model, images, targets)"
            )
        if len(data) == 0:
            raise InvalidInputError("LTX cannot pre-train on an empty dataset; give it images")
        key = make_key(
            STAGE,
            self.version,
            model.fingerprint(),
            data.key,
            array_digest(data.targets),
            {name: getattr(self, name) for name in _PRETRAIN_PARAMS},
            self.seed,
        )
        cache = self._cache(store)
        weights = _MEMORY.get(key) if cache is None else cache.load(STAGE, key)
        record = np.zeros(0)
        if weights is None:
            weights, record = self._pretrain(model, data, batch_size)
            if cache is None:
                _MEMORY[key] = weights
            else:
                cache.save(STAGE, key, weights)
        self._prepared[model.fingerprint()] = (key, weights, record)
        return key

    def pretrain(
        self, model: ModelAdapter, images: Any, targets: Any = None, *, batch_size: int = 32
    ) -> LTX:
        """Pre-train (or load from the cache) the explainer of ``model`` on ``images``.

        :meth:`prepare` on images in memory; ``targets`` defaults to the model's top class
        per image. Returns ``self``.
        """
        from imacs.images import as_image_batch, as_targets

        model.require("vjp", by=f"attribution method {self.name!r}")
        x = as_image_batch(images)
        if targets is None:
            t = model.predict(x, batch_size=batch_size).argmax(axis=1).astype(np.int64)
        else:
            if model.num_classes is None:
                model.predict(x[:1])
            t = as_targets(targets, len(x), model.num_classes)
        self.prepare(model, DatasetView.from_arrays(x, t), batch_size=batch_size)
        return self

    def explain(
        self, model: ModelAdapter, images: Any, targets: Any, *, batch_size: int = 32
    ) -> LTXExplanation:
        """Masks and the training record of each image (see :class:`LTXExplanation`)."""
        from imacs.images import as_image_batch, as_targets

        model.require("vjp", by=f"attribution method {self.name!r}")
        x = as_image_batch(images)
        if model.num_classes is None:
            model.predict(x[:1])
        return self._explain(model, x, as_targets(targets, len(x), model.num_classes), batch_size)

    # -- internals ------------------------------------------------------------------------

    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        explanation = self._explain(model, images, targets, batch_size)
        maps = np.repeat(explanation.masks[..., None], images.shape[3], axis=3)
        return AttributionResult(maps.astype(np.float32), self.name, self.get_params())

    def _explain(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> LTXExplanation:
        import torch

        prepared = self._prepared.get(model.fingerprint())
        if prepared is None:
            # not prepared for this model: pre-train on these images, for this call only
            fresh = copy.copy(self)
            fresh._prepared = {}
            fresh.prepare(model, DatasetView.from_arrays(images, targets), batch_size=batch_size)
            prepared = fresh._prepared[model.fingerprint()]
        _, weights, pretrain_objective = prepared
        explainer = _explainer(images.shape[3], self.width, self.seed)
        torch.nn.utils.vector_to_parameters(torch.from_numpy(weights), explainer.parameters())
        n, e = len(images), self.finetune_epochs
        masks = np.zeros(images.shape[:3], dtype=np.float32)
        objective = np.full((n, e), np.nan)
        pos_auc = np.full((n, e), np.nan)
        best_epoch = np.zeros(n, dtype=np.int64)
        measure = PositivePerturbation()
        for i in range(n):
            tuned = copy.deepcopy(explainer)
            optimiser = torch.optim.AdamW(tuned.parameters(), lr=self.lr)
            schedule = _schedule(optimiser, e)
            x, t = images[i : i + 1], targets[i : i + 1]
            best = np.inf
            for epoch in range(e):
                objective[i, epoch] = self._step(tuned, optimiser, schedule, model, x, t, 1)
                with torch.no_grad():
                    mask = tuned(torch.from_numpy(x.transpose(0, 3, 1, 2)))[1].numpy()
                auc = measure.evaluate(model, x, t, mask, batch_size=batch_size).scores[0]
                pos_auc[i, epoch] = auc
                if auc < best:
                    best, best_epoch[i], masks[i] = auc, epoch, mask[0]
                if auc < self.stop_auc:
                    break
        return LTXExplanation(masks, objective, pos_auc, best_epoch, pretrain_objective)

    def _step(
        self,
        explainer: Any,
        optimiser: Any,
        schedule: Any,
        model: ModelAdapter,
        images: np.ndarray,
        targets: np.ndarray,
        batch_size: int,
    ) -> float:
        """One AdamW step on ``images``; the objective before it."""
        import torch

        n = len(images)
        tokens, mask = explainer(torch.from_numpy(images.transpose(0, 3, 1, 2)))
        masked = images * mask.detach().numpy()[..., None]
        logits = model.predict(masked, batch_size=batch_size).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        rows = np.arange(n)
        cross_entropy = float(-np.log(probabilities[rows, targets] + 1e-12).mean())
        weights = probabilities
        weights[rows, targets] -= 1.0
        _, grads = model.output_vjp(masked, weights / n, batch_size=batch_size)
        mask_grad = torch.from_numpy((grads * images).sum(axis=3, dtype=np.float32))
        if self.mask_loss == "bce":
            size = torch.nn.functional.binary_cross_entropy_with_logits(
                tokens, torch.zeros_like(tokens)
            )
        else:
            size = tokens.mean()
        optimiser.zero_grad()
        ((mask * mask_grad).sum() + self.mask_coef * size).backward()
        optimiser.step()
        schedule.step()
        return cross_entropy + self.mask_coef * float(size.detach())

    def _cache(self, store: Store | None) -> Store | None:
        """Where pre-trained weights are kept: this method's store, else ``store``."""
        if self.store is None:
            return store
        return self.store if isinstance(self.store, Store) else Store(self.store)

    def _pretrain(
        self, model: ModelAdapter, data: DatasetView, batch_size: int
    ) -> tuple[np.ndarray, np.ndarray]:
        import torch

        explainer = _explainer(data.images([0]).shape[3], self.width, self.seed)
        optimiser = torch.optim.AdamW(explainer.parameters(), lr=self.lr)
        per_epoch = -(-len(data) // self.pretrain_batch)
        schedule = _schedule(optimiser, self.pretrain_epochs * per_epoch)
        generator = torch.Generator().manual_seed(self.seed)
        record = np.zeros(self.pretrain_epochs)
        for epoch in range(self.pretrain_epochs):
            order = torch.randperm(len(data), generator=generator).numpy()
            losses = []
            for start in range(0, len(data), self.pretrain_batch):
                batch = np.sort(order[start : start + self.pretrain_batch])
                losses.append(
                    self._step(
                        explainer,
                        optimiser,
                        schedule,
                        model,
                        data.images(batch),
                        data.targets[batch],
                        batch_size,
                    )
                )
            record[epoch] = float(np.mean(losses))
        vector = torch.nn.utils.parameters_to_vector(explainer.parameters())
        return vector.detach().numpy().astype(np.float32), record
