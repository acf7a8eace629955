"""`hf-ser export`: export a saved model to ONNX (fp32 or int8), verified against PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

from .common import CommandError, writable_dir

NAME = "export"


def add_parser(commands):
    """Add `hf-ser export` to the `hf-ser` sub-command parser."""
    export = commands.add_parser(
        NAME,
        help="Export a saved model to ONNX (fp32 or int8), verified against PyTorch, for torch-free inference.",
        description="Writes model.onnx (dynamic batch and time, attention mask input), the config, the feature "
        "extractor, onnx_export.json and a model card section, after checking ONNX Runtime against PyTorch on a "
        "padded batch of clips. The folder runs with hf_ser.onnx.ORTSERModel (onnxruntime + numpy only), "
        'pipeline("audio-classification", model=FOLDER) and hf-ser predict --model FOLDER. Needs hf_ser[onnx].',
    )
    export.add_argument("--model", required=True, help="Folder of a saved hf_ser model.")
    export.add_argument("--output-dir", required=True, help="Where the ONNX folder goes.")
    export.add_argument(
        "--quantize",
        choices=("none", "int8"),
        default="none",
        help="int8: dynamic quantisation (smaller, faster).",
    )
    export.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17).")
    return export


def run(args) -> int:
    """Run a parsed `hf-ser export` command."""
    source = Path(args.model)
    if not source.is_dir():
        raise CommandError(f"--model {args.model}: no such folder (give the folder of a saved hf_ser model)")
    if not (source / "config.json").is_file():
        raise CommandError(f"--model {args.model} has no config.json: is it a saved model folder?")
    output_dir = writable_dir(args.output_dir)
    if output_dir.resolve() == source.resolve():
        raise CommandError(
            "--output-dir must differ from --model (the export writes its own config and card)"
        )
    quantize = None if args.quantize == "none" else args.quantize
    try:
        from ..onnx.export import export_onnx

        print(
            f"[hf-ser export] exporting {source} ({args.quantize}) and checking it against PyTorch",
            flush=True,
        )
        folder = export_onnx(source, output_dir, quantize=quantize, opset=args.opset)
    except ImportError as error:  # onnx / onnxruntime missing: installable, so the user's to fix
        raise CommandError(str(error)) from None
    info = json.loads((folder / "onnx_export.json").read_text())
    check = info["verification"]
    print(
        f"[hf-ser export] wrote {folder / 'model.onnx'}; max |ONNX - PyTorch| on a padded batch: "
        f"{check['max_abs_diff_padded_batch']:.2e}"
        + (f", top-1 agreement {check['top1_agreement']:.0%}" if "top1_agreement" in check else "")
    )
    return 0
