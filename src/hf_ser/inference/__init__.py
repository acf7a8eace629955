"""Inference: length-bucketed batching, prediction over arrays and files, pipelines, ensembles and score fusion."""

from .._moved import forward_to_module

# `hf_ser.inference` was a module before it became this package: its names still resolve.
__getattr__ = forward_to_module(__name__, "predict")
