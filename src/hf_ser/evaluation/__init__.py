"""Evaluation: the challenge metrics as `evaluate` modules, reports and plots, submission files, and the analysis tools of papers 000 and 004."""

from .._moved import forward_to_module

# `hf_ser.evaluation` was a module before it became this package: its names still resolve.
__getattr__ = forward_to_module(__name__, "report")
