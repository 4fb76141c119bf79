"""nnprune: reproducible structured-pruning benchmarks."""
__version__ = "0.1.0"
