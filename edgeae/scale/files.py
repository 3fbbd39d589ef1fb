"""``edgeae encode`` / ``edgeae compress`` on files: one process, or a Dask cluster.

Both read the input through a :class:`~edgeae.data.RowSource` and write the
output block by block, so memory stays flat however large the input is; with ``dask``
(``local:N`` or ``tcp://HOST:PORT``) the blocks run on the cluster's workers and the
client writes their results in block order (same bytes as one process).
"""

from __future__ import annotations

import os
from typing import Any

from edgeae.data import open_source, spec_for_model
from edgeae.runtime.model import DEFAULT_BATCH_SIZE
from edgeae.scale import bulk

__all__ = ["encode_file", "compress_file"]


def _setup(bundle: str, input_path: str, resize, precision: str, provider: str, threads: int | None,
           graph_format: str, window: int | None = None, hop: int | None = None):
    from edgeae.runtime import load

    providers = [p.strip() for p in provider.split(",")] if "," in provider else provider
    model = load(bundle, precision=precision, providers=providers, threads=threads, format=graph_format)
    return model, open_source(input_path, model.sample_shape, resize, spec_for_model(window, hop, model.sample_shape))


def _on_dask(address: str, bundle: str, source, precision, provider, threads, graph_format, run):
    """Run ``run(spec, x)`` with a client for ``address`` (a local cluster is shut down after)."""
    from edgeae.runtime import read_manifest
    from edgeae.scale import dask as edask

    client = edask.connect(address)
    try:
        spec = edask.ModelSpec(os.path.abspath(bundle), precision, provider, 1 if threads is None else threads,
                               graph_format)
        rows = bulk.block_rows(int(read_manifest(bundle).code_size))
        return run(edask, spec, edask.as_dask_array(source, rows))
    finally:
        cluster = client.cluster if address.startswith("local:") else None
        client.close()
        if cluster is not None:
            cluster.close()


def encode_file(bundle: str, input_path: str, output: str, *, resize=None, precision: str = "fp32",
                provider: str = "auto", threads: int | None = None, graph_format: str = "onnx",
                batch_size: int = DEFAULT_BATCH_SIZE, dask: str | None = None, progress=None,
                window: int | None = None, hop: int | None = None):
    """Encode every sample of ``input_path`` into the ``.npy`` file ``output``; -> (model, n, D).

    ``window`` / ``hop`` cut a signal recording into the model's windows (docs/timeseries.md).
    """
    model, source = _setup(bundle, input_path, resize, precision, provider, threads, graph_format, window, hop)
    if dask:
        n, d = _on_dask(dask, bundle, source, precision, provider, threads, graph_format,
                        lambda ed, spec, x: ed.encode_to_npy(spec, x, output, batch_size=batch_size,
                                                             progress=progress, where=input_path))
    else:
        n, d = bulk.encode_to_npy(model, source, output, batch_size=batch_size, progress=progress)
    return model, n, d


def compress_file(bundle: str, input_path: str, output: str, *, bits: int | None = None, append: bool = False,
                  resize=None, precision: str = "fp32", provider: str = "auto", threads: int | None = None,
                  graph_format: str = "onnx", batch_size: int = DEFAULT_BATCH_SIZE, check: bool = True,
                  dask: str | None = None, progress=None, window: int | None = None,
                  hop: int | None = None) -> tuple[Any, dict[str, Any]]:
    """Compress every sample of ``input_path`` into the stream ``output``; -> (model, report).

    ``window`` / ``hop`` cut a signal recording into the model's windows (docs/timeseries.md).
    """
    model, source = _setup(bundle, input_path, resize, precision, provider, threads, graph_format, window, hop)
    if dask:
        report = _on_dask(dask, bundle, source, precision, provider, threads, graph_format,
                          lambda ed, spec, x: ed.compress(spec, x, output, bits=bits, append=append,
                                                          batch_size=batch_size, check=check, progress=progress,
                                                          where=input_path))
    else:
        report = bulk.compress_to_file(model, source, output, bits=bits, append=append, batch_size=batch_size,
                                       check=check, progress=progress)
    return model, report
