"""Moved to :mod:`service.loadgen.reference_loop` (kept importable for ``bench_core.py``)."""

from service.loadgen.reference_loop import dark_decode_loop

__all__ = ["dark_decode_loop"]
