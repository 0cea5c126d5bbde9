"""What a model file may ask us to build, checked without TensorFlow before anything is built.

A model file names an architecture and its parameters; `build_model` would allocate whatever
they ask for (a 1 kB manifest asking for width 10⁹ ends in an out-of-memory crash). So the
parameters are bounded first, and the weight shapes the architecture will have are computed
here from the same formulas as kpstudio.ml.models (a test keeps the two equal) and compared
with the shapes the file records, all before TensorFlow is imported.
"""

from __future__ import annotations

from typing import Any

from kpstudio.core.keypoint_relations import check_relations

# Bounds on what a model file may ask for. The studio trains default models at width 16,
# decoder 48 and 256–320 px inputs; these leave 8× headroom on width and 3× on input side
# while keeping one model's weights a few hundred MB at most and one image's activations
# (input side² / 4 × width × 4 bytes at the first layer) under 128 MB.
MAX_INPUT_SIZE = 1024
MAX_WIDTH = 128
MAX_DECODER = 512
# All weights of a model (float32): 300 M parameters are 1.2 GB. The seed architecture's dense
# layer grows with the input side squared and reaches it near a 150 px input.
MAX_PARAMETERS = 300_000_000

DEFAULT_PARAMS = {
    "width": 16,
    "decoder": 48,
    "bn_momentum": 0.9,
    "stride": 4,
    "hints": False,
    "context": 0,
    "peak": 0,
    "relations": [],
}  # build_default's
HEATMAP_STRIDES = (4, 2)  # models.HEATMAP_STRIDES (a test keeps them equal)
MAX_CONTEXT = 4  # models.MAX_CONTEXT
MAX_PEAK = 16  # cells around the peak a keypoint is read within (0: the whole map)
# Parameters that change no weight: how the heatmaps are read (chosen anew by each run).
WEIGHTLESS_PARAMS = ("peak", "relations")
_INT_PARAMS = {"width": (1, MAX_WIDTH), "decoder": (1, MAX_DECODER)}


class LayoutError(ValueError):
    """The architecture or its parameters are outside what kpstudio builds; says which."""


def check_architecture(name: str, params: dict, num_keypoints: int, input_size: int) -> None:
    """Refuse parameters a kpstudio build would reject or that exceed the limits above."""
    if name == "seed":
        if params:
            raise LayoutError(f"the seed architecture takes no parameters, not {sorted(params)}")
        if not 9 <= input_size <= MAX_INPUT_SIZE:  # two 5×5 valid convolutions need 9 px
            raise LayoutError(f"a seed model's input size must be 9 to {MAX_INPUT_SIZE}")
    elif name == "default":
        unknown = sorted(set(params) - set(DEFAULT_PARAMS))
        if unknown:
            raise LayoutError(f"unknown parameters {unknown} for the default architecture")
        for key, (low, high) in _INT_PARAMS.items():
            value = params.get(key, DEFAULT_PARAMS[key])
            if not _is_int(value) or not low <= value <= high:
                raise LayoutError(f"{key} must be a whole number from {low} to {high}")
        momentum = params.get("bn_momentum", DEFAULT_PARAMS["bn_momentum"])
        if isinstance(momentum, bool) or not isinstance(momentum, int | float):
            raise LayoutError("bn_momentum must be a number")
        if not 0.0 <= momentum < 1.0:
            raise LayoutError("bn_momentum must lie in [0, 1)")
        stride = params.get("stride", DEFAULT_PARAMS["stride"])
        if not _is_int(stride) or stride not in HEATMAP_STRIDES:
            raise LayoutError(f"stride must be one of {HEATMAP_STRIDES}")
        context = params.get("context", DEFAULT_PARAMS["context"])
        if not _is_int(context) or not 0 <= context <= MAX_CONTEXT:
            raise LayoutError(f"context must be a whole number from 0 to {MAX_CONTEXT}")
        peak = params.get("peak", DEFAULT_PARAMS["peak"])
        if not _is_int(peak) or not 0 <= peak <= MAX_PEAK:
            raise LayoutError(f"peak must be a whole number from 0 to {MAX_PEAK}")
        why = check_relations(params.get("relations", []), num_keypoints)
        if why:
            raise LayoutError(why)
        if not isinstance(params.get("hints", False), bool):
            raise LayoutError("hints must be true or false")
        if input_size % 32 or not 32 <= input_size <= MAX_INPUT_SIZE:
            raise LayoutError(
                f"a default model's input size must be a multiple of 32 from 32 to {MAX_INPUT_SIZE}"
            )
    else:
        raise LayoutError(f"unknown architecture {name!r}")
    count = sum(_size(s) for s in expected_weight_shapes(name, params, num_keypoints, input_size))
    if count > MAX_PARAMETERS:
        raise LayoutError(
            f"the model would have {count:,} parameters, more than the limit of {MAX_PARAMETERS:,}"
        )


def expected_weight_shapes(
    name: str, params: dict, num_keypoints: int, input_size: int
) -> list[list[int]]:
    """The shapes of the weights `build_model(name, K, S, **params)` creates (as a multiset:
    the order is Keras' concern), mirroring kpstudio.ml.models layer for layer."""
    k = num_keypoints
    if name == "seed":
        flat = (input_size - 8) ** 2 * 64  # after two 5×5 valid convolutions, 64 channels
        return [[5, 5, 3, 32], [32], [5, 5, 32, 64], [64], [flat, 256], [256], [256, 2 * k],
                [2 * k]]  # fmt: skip
    width = params.get("width", DEFAULT_PARAMS["width"])
    decoder = params.get("decoder", DEFAULT_PARAMS["decoder"])
    shapes: list[list[int]] = []

    def conv(cin: int, cout: int, kernel: int) -> None:  # Conv2D without bias + BatchNorm
        shapes.append([kernel, kernel, cin, cout])
        shapes.extend([[cout]] * 4)  # gamma, beta, moving mean, moving variance

    w = width
    for cin, cout in ((3, w), (w, 2 * w), (2 * w, 2 * w), (2 * w, 4 * w), (4 * w, 4 * w),
                      (4 * w, 6 * w), (6 * w, 8 * w)):  # fmt: skip
        conv(cin, cout, 3)  # the encoder, stride 2 to 32
    for _ in range(params.get("context", DEFAULT_PARAMS["context"])):
        conv(8 * w, 8 * w, 3)  # context blocks at stride 32
    conv(8 * w, decoder, 1)
    for skip, last in ((6 * w, False), (4 * w, False), (2 * w, True)):
        conv(skip, decoder, 1)  # lateral
        if not last:
            conv(decoder, decoder, 3)
    if params.get("stride", DEFAULT_PARAMS["stride"]) == 2:
        conv(w, decoder, 1)  # the stride-2 level's lateral
    if params.get("hints", False):
        shapes += [[3, 3, k, decoder], [3, 3, k, decoder]]  # hint maps at strides 16 and 8
    shapes += [[1, 1, decoder, k], [k]]  # heatmap logits, with bias
    return shapes


def _size(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
