"""Uneven padding, read from each convolution's and pooling's arithmetic (no data, no training).

A convolution or pooling layer with kernel ``k``, stride ``s``, dilation ``d`` and
padding ``p`` on each side of an axis of ``n`` input pixels slides over ``n + 2p``
positions; its last window ends ``(n + 2p - d(k - 1) - 1) mod s`` positions before the
end. Those trailing rows (or columns) are never read: first the padding after the input,
then input pixels themselves. The layer then pads the top/left more than the
bottom/right, and a network learns the asymmetry (Alsallakh et al., "Mind the Pad - CNNs
Can Develop Blind Spots", ICLR 2021). Keras/TensorFlow ``same`` padding pads
``max((ceil(n / s) - 1) s + d(k - 1) + 1 - n, 0)`` in all and puts the odd one at the
bottom/right.

The adapters report each layer's geometry at an input size through the ``geometry``
capability (:meth:`imacs.adapters.base.ModelAdapter.layer_geometry`); everything here is
arithmetic on those reports. The ResNet stem (7x7, stride 2, padding 3) at 224 leaves
``(224 + 6 - 7) mod 2 = 1`` row unread: uneven.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imacs.errors import InvalidInputError

AXES = ("rows", "columns")
#: how far from the requested size :func:`nearest_even_sizes` looks, in pixels
DEFAULT_SEARCH = 32


@dataclass(frozen=True)
class AxisPadding:
    """What one layer does along one axis of its input."""

    size: int
    kernel: int
    stride: int
    dilation: int
    #: padding read before the input (top or left), in rows or columns
    before: int
    #: padding read after the input (bottom or right); negative: input rows never read
    after: int
    #: trailing rows or columns of the padded input that no window reads
    unused: int

    @property
    def uneven(self) -> bool:
        return self.before != self.after

    @property
    def heavier(self) -> str | None:
        """``"before"`` (top/left padded more), ``"after"`` (bottom/right), or ``None``."""
        if self.before == self.after:
            return None
        return "before" if self.before > self.after else "after"


def axis_padding(
    n: int,
    kernel: int,
    stride: int = 1,
    padding: int | str | tuple[int, int] = 0,
    dilation: int = 1,
    *,
    ceil_mode: bool = False,
) -> AxisPadding:
    """The padding one layer reads on each side of an axis of ``n`` pixels.

    ``padding`` is an int (the same on both sides, PyTorch's convention), a
    ``(before, after)`` pair, or ``"same"``/``"valid"`` as Keras and TensorFlow (and
    PyTorch, for stride 1) define them. ``ceil_mode`` is PyTorch pooling's: a last window
    that starts inside the input may run past the padded end.
    """
    span = dilation * (kernel - 1) + 1
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            before = after = 0
        elif mode == "same":
            out = -(-n // stride)
            total = max((out - 1) * stride + span - n, 0)
            before, after = total // 2, total - total // 2
        else:
            raise InvalidInputError(
                f"expected padding to be an int, a pair, 'same' or 'valid'; got {padding!r}"
            )
    elif isinstance(padding, tuple | list):
        before, after = int(padding[0]), int(padding[1])
    else:
        before = after = int(padding)
    padded = n + before + after
    if padded < span:
        raise InvalidInputError(
            f"an axis of {n} pixels with padding {before}+{after} is smaller than the "
            f"kernel's span {span}: the input is too small for this layer"
        )
    unused = (padded - span) % stride
    if ceil_mode and unused:
        # PyTorch adds one more window if it starts inside the input or the left padding
        last_start = (padded - span) // stride * stride + stride
        if last_start < n + before:
            return AxisPadding(n, kernel, stride, dilation, before, after + stride - unused, 0)
    return AxisPadding(n, kernel, stride, dilation, before, after - unused, unused)


def layer_report(layer: Mapping[str, Any]) -> dict[str, Any]:
    """One layer's geometry (as an adapter reports it) with its verdict on both axes."""
    padding = layer.get("padding", 0)
    per_axis = padding if isinstance(padding, tuple | list) else (padding, padding)
    row = {
        "layer": layer["name"],
        "type": layer.get("type", ""),
        "input": f"{layer['input_size'][0]}x{layer['input_size'][1]}",
        "kernel": "x".join(str(k) for k in layer["kernel"]),
        "stride": "x".join(str(s) for s in layer["stride"]),
        "padding": padding if isinstance(padding, str) else "x".join(map(str, per_axis)),
        "dilation": "x".join(str(d) for d in layer.get("dilation", (1, 1))),
    }
    sides = (("top", "bottom"), ("left", "right"))
    notes = []
    for axis, name in enumerate(AXES):
        result = axis_padding(
            int(layer["input_size"][axis]),
            int(layer["kernel"][axis]),
            int(layer["stride"][axis]),
            per_axis[axis],
            int(layer.get("dilation", (1, 1))[axis]),
            ceil_mode=bool(layer.get("ceil_mode", False)),
        )
        row[f"{name}_before"] = result.before
        row[f"{name}_after"] = result.after
        row[f"{name}_unused"] = result.unused
        if result.uneven:
            more, less = sides[axis] if result.heavier == "before" else sides[axis][::-1]
            unread = f"; {-result.after} input {name} never read" if result.after < 0 else ""
            notes.append(
                f"{more} padded {abs(result.before - max(result.after, 0))} more than {less}"
                + (f" ({result.unused} trailing {name} unused)" if result.unused else "")
                + unread
            )
    row["uneven"] = bool(notes)
    row["note"] = "; ".join(notes)
    return row


def padding_table(layers: Sequence[Mapping[str, Any]]) -> Any:
    """A table, one row per layer, of where each convolution and pooling pads unevenly."""
    import pandas as pd

    return pd.DataFrame([layer_report(layer) for layer in layers])


def uneven_axes(layers: Sequence[Mapping[str, Any]]) -> tuple[bool, bool]:
    """Whether any layer pads rows unevenly, and whether any pads columns unevenly."""
    rows = columns = False
    for layer in layers:
        report = layer_report(layer)
        rows |= report["rows_before"] != report["rows_after"]
        columns |= report["columns_before"] != report["columns_after"]
    return rows, columns


def nearest_even_sizes(
    geometry: Callable[[tuple[int, int]], Sequence[Mapping[str, Any]]],
    size: tuple[int, int],
    *,
    search: int = DEFAULT_SEARCH,
) -> dict[str, dict[str, int | None]]:
    """The nearest heights and widths, below and above ``size``, with no uneven layer.

    ``geometry(size)`` reports the layers at an input size (an adapter's
    ``layer_geometry``). Heights are searched with the width fixed, and widths with the
    height fixed, up to ``search`` pixels away; ``None`` where none was found.
    """
    found: dict[str, dict[str, int | None]] = {}
    for axis, name in ((0, "height"), (1, "width")):
        found[name] = {"below": None, "above": None}
        for direction, step in (("below", -1), ("above", 1)):
            for offset in range(0, search + 1):
                candidate = list(size)
                candidate[axis] = size[axis] + step * offset
                if candidate[axis] < 1:
                    break
                try:
                    layers = geometry((candidate[0], candidate[1]))
                    flags = uneven_axes(layers)
                except InvalidInputError:
                    continue  # too small for some layer, or refused by the model
                if not flags[axis]:
                    found[name][direction] = candidate[axis]
                    break
    return found


def padding_report(adapter: Any, size: tuple[int, int], *, search: int = DEFAULT_SEARCH) -> dict:
    """Every convolution and pooling of ``adapter`` at ``size``, and the nearest even sizes.

    Returns ``{"size", "layers" (a table), "uneven" (count), "nearest"}``; needs the
    adapter's ``geometry`` capability.
    """
    adapter.require("geometry", by="the padding checker")
    layers = adapter.layer_geometry(size)
    table = padding_table(layers)
    uneven = int(table["uneven"].sum()) if len(table) else 0
    nearest = (
        nearest_even_sizes(adapter.layer_geometry, size, search=search)
        if uneven
        else {
            name: {"below": size[axis], "above": size[axis]}
            for axis, name in enumerate(("height", "width"))
        }
    )
    return {"size": list(size), "layers": table, "uneven": uneven, "nearest": nearest}


def format_report(report: Mapping[str, Any], title: str = "") -> str:
    """The report as the plain text ``imacs inspect`` prints."""
    table = report["layers"]
    height, width = report["size"]
    lines = [
        f"{title}padding at input size {height}x{width}: "
        f"{report['uneven']} of {len(table)} convolution/pooling layers uneven"
    ]
    for row in table.itertuples():
        mark = "UNEVEN" if row.uneven else "even  "
        lines.append(
            f"  {mark} {row.layer} ({row.type}) input {row.input}, kernel {row.kernel}, "
            f"stride {row.stride}, padding {row.padding}, dilation {row.dilation}"
            + (f": {row.note}" if row.uneven else "")
        )
    nearest = report["nearest"]
    if report["uneven"]:
        for name in ("height", "width"):
            below, above = nearest[name]["below"], nearest[name]["above"]
            lines.append(
                f"  nearest {name}s with no uneven layer: "
                f"{below if below is not None else 'none within reach'} below, "
                f"{above if above is not None else 'none within reach'} above"
            )
    return "\n".join(lines)
