"""The reproducible benchmark suite: ``python -m benchmarks.run`` (``make bench``)."""
