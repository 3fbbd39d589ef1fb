"""The data layer: every supported format read as rows, normalization fitting, the split.

    source ("digits" | IDX[.gz] | .npy | .npz | image file/folder | CSV | .ts | an array)
      -> the format's RowSource: shape, dtype, read(start, count), memory-mapped where it can
      -> load_dataset (every row + labels) | open_training_source (training)
         | open_source / load_array_input (a trained model's inputs: encode, compress, Dask)
      -> fit_normalization / scan_statistics, split_indices -> training (edgeae.rows)

One module per format (:mod:`~edgeae.data.idxfile`, :mod:`~edgeae.data.npyfile`,
:mod:`~edgeae.data.csvfile`, :mod:`~edgeae.data.imageio`, :mod:`~edgeae.data.digits`,
:mod:`~edgeae.data.tsfile`; signal windows cut from any of them: :mod:`~edgeae.data.signals`;
arrays in memory: :class:`~edgeae.data.source.ArraySource`), each checking a file's header
against its bytes before anything is allocated, so every command accepts or refuses a file
the same way. Sample shapes of any rank pass through as stored where the format does not
say they are images.

Imports: standard library and numpy; Pillow (images) and scikit-learn (``digits``) are
imported where a format needs them, and the runtime's input contract where a model's
layout is applied. Nothing here imports torch, training, export, the CLI or Dask.
"""

from edgeae.data.fit import (
    fit_normalization,
    scan_statistics,
    split_indices,
    streaming_normalization,
)
from edgeae.data.imageio import IMAGE_SUFFIXES
from edgeae.data.inputs import is_npz_file, load_inputs, read_codes
from edgeae.data.load import (
    FORMATS,
    SUPPORTED,
    detect_format,
    load_array_input,
    load_dataset,
    open_source,
    open_training_source,
    parse_resize,
)
from edgeae.data.signals import SignalSpec, WindowSource, channel_normalization, spec_for_model
from edgeae.data.source import (
    ArraySource,
    Dataset,
    RowSource,
    as_samples,
    check_finite,
    iter_blocks,
    resize_array,
    shape_mismatch,
)

__all__ = [
    "FORMATS", "IMAGE_SUFFIXES", "SUPPORTED", "ArraySource", "Dataset", "RowSource", "SignalSpec", "WindowSource",
    "as_samples", "channel_normalization", "check_finite",
    "detect_format", "fit_normalization", "is_npz_file", "iter_blocks", "load_array_input", "load_dataset",
    "load_inputs", "open_source", "open_training_source", "parse_resize", "read_codes", "resize_array",
    "scan_statistics", "shape_mismatch", "spec_for_model", "split_indices", "streaming_normalization",
]
