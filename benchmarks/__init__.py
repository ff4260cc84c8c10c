"""asv benchmarks of tinygrad_edu (``asv run``) and the side-by-side comparison with numpy and
PyTorch (``python -m benchmarks.compare``); see docs/benchmarks.md."""
