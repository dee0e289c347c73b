"""tf-explain's OcclusionSensitivity.

Zeiler, Fergus. "Visualizing and Understanding Convolutional Networks". ECCV 2014.
arXiv:1311.2901. Implementation:
``tf_explain.core.OcclusionSensitivity.get_sensitivity_map``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from imacs.errors import InvalidInputError
from imacs.parameters import check_positive_int
from imacs_tf_explain.tf_explain_method import TfExplainMethod

if TYPE_CHECKING:
    from imacs_tensorflow.adapter import TensorFlowAdapter

#: the patch side without one given: the built-in occlusion's and PAIR saliency's window
DEFAULT_PATCH_SIZE = 15


class TfExplainOcclusionSensitivity(TfExplainMethod):
    """tf-explain's occlusion sensitivity: ``1 - score`` with a grey patch over each cell.

    tf-explain covers the image with a grid of ``patch_size`` squares, sets one at a time
    to its fixed grey ``127.5`` (mid-grey of 0-255 pixels, in the user's pixel units
    whatever their range), and records ``1 - score`` for the class, the score being the
    adapter's target score; the grid is resized to the image by ``cv2.resize``
    (bilinear). The map is that, unchanged and repeated across channels: read it as a
    probability's complement, meaningful for probability targets. It is not
    ``F(x) - F(occluded)``; for that use ``captum-occlusion`` or the built-in.

    Parameters
    ----------
    patch_size:
        Side of the square patches, in pixels. tf-explain has no default; ours, ``None``,
        is 15 (cut to the image if it is smaller), the window of the built-in
        ``occlusion`` and of PAIR saliency.

    Square images only: tf-explain 0.3.1 walks the patch grid with rows and columns
    swapped and hands ``cv2.resize`` ``(H, W)`` where it expects ``(width, height)``,
    which cancel out only when ``H == W`` (on other shapes the map comes back ``(W, H)``
    and misplaced). ``batch_size`` goes to tf-explain as Keras ``predict``'s batch size.
    """

    name = "tf-explain-occlusion-sensitivity"
    citation = "Zeiler & Fergus, ECCV 2014, arXiv:1311.2901 (tf-explain)"
    builtin = "occlusion"

    def __init__(self, *, patch_size: int | None = None):
        if patch_size is not None:
            check_positive_int(patch_size, "patch_size")
        self.patch_size = patch_size

    def _explain(
        self, adapter: TensorFlowAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> tuple[np.ndarray, None]:
        from tf_explain.core.occlusion_sensitivity import OcclusionSensitivity

        from imacs_tf_explain.keras_bridge import pixel_model, quiet_predict

        _, height, width, _ = images.shape
        if height != width:
            raise InvalidInputError(
                f"tf-explain-occlusion-sensitivity needs square images; got {height}x{width}: "
                "tf-explain 0.3.1 swaps rows and columns on other shapes (its patch grid and "
                "its cv2.resize call), so the map would be misplaced. Crop or pad the "
                "images to a square, or use 'captum-occlusion' or the built-in 'occlusion'"
            )
        patch = self.patch_size or min(DEFAULT_PATCH_SIZE, height)
        if patch > height:
            raise InvalidInputError(
                f"expected patch_size no larger than the image ({height}); got {patch}"
            )
        model = pixel_model(adapter, images)
        explainer = OcclusionSensitivity(batch_size=batch_size)
        maps = np.empty_like(images)
        with quiet_predict():
            for i in range(len(images)):
                sensitivity = explainer.get_sensitivity_map(
                    model, images[i], int(targets[i]), int(patch)
                )
                maps[i] = np.asarray(sensitivity, np.float32)[..., None]
        return maps, None
