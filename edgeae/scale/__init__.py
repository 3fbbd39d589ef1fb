"""Beyond one process: bulk encode/compress, on one process or on Dask.

- :mod:`edgeae.scale.bulk`: encode / compress a :class:`~edgeae.data.RowSource` block by
  block into ``.npy`` codes and ``.eae`` streams with constant memory; the block plan every
  executor shares.
- :mod:`edgeae.scale.files`: ``edgeae encode`` / ``edgeae compress`` on files, either way.
- :mod:`edgeae.scale.dask`: the same blocks as Dask tasks (``pip install 'edgeae[dask]'``).

Inputs are read through :mod:`edgeae.data`; training on several processes lives in
:mod:`edgeae.distributed` (torchrun + DDP) and reads through :mod:`edgeae.rows`. Nothing
here is imported by :mod:`edgeae.runtime`, which stays numpy + onnxruntime only.
"""

from __future__ import annotations

__all__ = ["require_dask"]


def require_dask(address: str | None) -> None:
    """Refuse ``--dask ADDRESS`` before any work when the dask extra is not installed."""
    if address is None:
        return
    from edgeae.errors import ConfigError

    try:
        import dask  # noqa: F401
        import distributed  # noqa: F401
    except ImportError:
        raise ConfigError("--dask needs Dask, which is not installed: pip install 'edgeae[dask]'") from None
