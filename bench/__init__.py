"""Benchmarks of jupyter-valohai (not tests): ``python -m bench`` runs them all and writes
``bench/RESULTS.md``. See docs/performance.md."""
