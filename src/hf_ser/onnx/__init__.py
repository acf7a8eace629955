"""ONNX export and ONNX Runtime inference (the `hf_ser[onnx]` extra: onnx, onnxruntime).

- `hf_ser.export_onnx(model_or_path, output_dir, quantize=None | "int8")` (also `hf-ser export`) writes a verified
  export folder; it needs torch.
- [`ORTSERModel`] runs such a folder with onnxruntime and numpy alone: importing it never imports torch or
  transformers.
"""

from __future__ import annotations

from . import runtime
from .runtime import (
    EXPORT_INFO_FILE,
    ONNX_FILE,
    NumpyFeatureExtractor,
    ONNXExportError,
    ORTConfig,
    ORTSERModel,
    is_onnx_folder,
)


def __getattr__(name: str):
    # The exporter needs torch: imported on first use, so that the runtime stays torch-free.
    if name in ("export_onnx", "verify_export", "quantize_int8"):
        from . import export

        return getattr(export, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# The runtime's public names (less its internal `require`) and the exporter.
__all__ = [name for name in runtime.__all__ if name != "require"] + ["export_onnx"]
