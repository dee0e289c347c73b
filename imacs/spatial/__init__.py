"""Where in the frame: positional attribution maps, uneven padding and blind spots.

Alsallakh et al. ("Mind the Pad - CNNs Can Develop Blind Spots", ICLR 2021) found that
convolutional networks develop spatial bias, chiefly from padding applied unevenly by
the convolution arithmetic. This package measures it for both models of a comparison:

- :mod:`imacs.spatial.positional`: dataset-wide positional attribution maps, B - A with
  bootstrap intervals and a family-wise error mark, border-versus-centre ratios;
- :mod:`imacs.spatial.padding`: the static uneven-padding checker;
- :mod:`imacs.spatial.activations`: mean activation maps per layer;
- :mod:`imacs.spatial.blind_spots`: the blind-spot probe;
- :mod:`imacs.spatial.analysis`: all of it for a comparison, saved with it.

docs/spatial.md describes the measures.
"""

#: the parts of the analysis ``compare(spatial=...)`` can run
PARTS = ("positional", "padding", "activations", "blind_spots")
