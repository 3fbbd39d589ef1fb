"""Beyond one process: inputs larger than memory, bulk encode/compress on Dask, DDP training.

- :mod:`edgeae.scale.sources`: read any supported data file a block of rows at a time.
- :mod:`edgeae.scale.bulk`: encode / compress a source block by block into ``.npy`` codes and
  ``.eae`` streams with constant memory; the block plan every executor shares.
- :mod:`edgeae.scale.dask`: the same blocks as Dask tasks (``pip install 'edgeae[dask]'``).

Training on several processes lives in :mod:`edgeae.distributed` (torchrun + DDP).
Nothing here is imported by :mod:`edgeae.runtime`, which stays numpy + onnxruntime only.
"""
