"""Benchmark 10's front-end probe (issue 19): can the convolutional waveform encoder, 37 % of ONNX Runtime's fp32
time at batch 1, be made cheaper in the exported graph?

WavLM's seven convolutions (kernels 10, 3, 3, 3, 3, 2, 2; strides 5, 2, 2, 2, 2, 2, 2) each have a kernel equal
to, twice, or one more than the stride, so each is exactly a reshape of the channels-last signal into windows
followed by one matrix product, and the LayerNorm then needs no transposes. In that form dynamic int8 quantisation
(MatMulInteger) can reach the front end, where onnxruntime's ConvInteger was slower than float. This script builds
that form from the same weights (WavLM-large's layer-norm front end, 512 channels, random weights), checks it
equals transformers' encoder, exports both to ONNX and times, in one interleaved run with one thread:
ONNX Runtime with the convolutions (what hf_ser exports), the MatMul form in fp32, the MatMul form with its six
512-channel products in int8 (the first, 1 -> 512 channel, one stays float), and PyTorch eager. It is a probe, not
an export option: the result decides whether the exporter should adopt the form.

Usage: python benchmarks/onnx_front_end_probe.py [--output benchmarks/onnx_front_end_probe.json]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from run_benchmarks import report_json  # noqa: E402  (a sibling script, not a package)

SR = 16_000


class WindowedMatMulFrontEnd(nn.Module):
    """transformers' convolutional feature encoder (layer-norm or no-norm layers) computed channels-last, each
    convolution as windows x weight matrix. Output (batch, channels, frames), like the encoder's."""

    def __init__(self, feature_encoder: nn.Module):
        super().__init__()
        self.layers = feature_encoder.conv_layers
        # (out, in, kernel) -> (kernel * in, out), matching the windows' [time][channel] layout; stored in that
        # layout so that the exported graph holds them as initialisers of the MatMuls.
        self.weights = nn.ParameterList(
            nn.Parameter(
                layer.conv.weight.detach().permute(2, 1, 0).reshape(-1, layer.conv.out_channels).clone()
            )
            for layer in self.layers
        )

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        hidden = waveform.unsqueeze(-1)  # (batch, samples, 1)
        for layer, weight in zip(self.layers, self.weights, strict=True):
            conv = layer.conv
            kernel, stride = conv.kernel_size[0], conv.stride[0]
            batch, length, channels = hidden.shape
            frames = (length - kernel) // stride + 1
            if kernel == stride:
                windows = hidden[:, : frames * stride].reshape(batch, frames, kernel * channels)
            elif kernel == 2 * stride:
                blocks = hidden[:, : (frames + 1) * stride].reshape(batch, frames + 1, stride * channels)
                windows = torch.cat([blocks[:, :-1], blocks[:, 1:]], dim=-1)
            elif kernel == stride + 1:
                # One zero frame of padding makes room for the last block; its window never reaches the pad.
                padded = F.pad(hidden, (0, 0, 0, stride))
                blocks = padded[:, : (frames + 1) * stride].reshape(batch, frames + 1, stride * channels)
                windows = torch.cat([blocks[:, :-1], blocks[:, 1:, :channels]], dim=-1)
            else:
                raise ValueError(f"kernel {kernel} with stride {stride} has no windowed form here")
            hidden = windows @ weight
            if conv.bias is not None:
                hidden = hidden + conv.bias
            if hasattr(layer, "layer_norm"):
                hidden = layer.layer_norm(hidden)
            hidden = layer.activation(hidden)
        return hidden.transpose(1, 2)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, nargs="+", default=[3.0, 8.0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)

    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import WavLMConfig
    from transformers.models.wavlm.modeling_wavlm import WavLMFeatureEncoder

    torch.set_num_threads(1)
    torch.manual_seed(0)
    encoder = WavLMFeatureEncoder(WavLMConfig(feat_extract_norm="layer", do_stable_layer_norm=True)).eval()
    windowed = WindowedMatMulFrontEnd(encoder).eval()
    rng = np.random.default_rng(0)
    exactness = []
    with torch.no_grad():
        for length in (16_000, 16_001, 16_003, 40_007, 128_000):
            x = torch.from_numpy((0.1 * rng.standard_normal((2, length))).astype(np.float32))
            exactness.append(float((encoder(x) - windowed(x)).abs().max()))
    rows = {"torch_vs_windowed_max_abs_diff": max(exactness)}
    with tempfile.TemporaryDirectory() as work:
        paths = {"conv": Path(work) / "conv.onnx", "matmul": Path(work) / "matmul.onnx"}
        for name, module in (("conv", encoder), ("matmul", windowed)):
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    module, (torch.zeros(1, SR),), str(paths[name]), dynamo=False, input_names=["x"],
                    output_names=["y"], dynamic_axes={"x": {0: "batch", 1: "time"}}, opset_version=17,
                )  # fmt: skip
        graph = onnx.load(str(paths["matmul"])).graph
        weights = {init.name for init in graph.initializer}
        products = [node.name for node in graph.node if node.op_type == "MatMul" and node.input[1] in weights]
        if len(products) != len(windowed.weights):
            raise SystemExit(
                f"expected {len(windowed.weights)} weight products in the graph, found {products}"
            )
        paths["matmul_int8"] = Path(work) / "matmul_int8.onnx"
        logging.getLogger().setLevel(logging.ERROR)
        quantize_dynamic(
            str(paths["matmul"]), str(paths["matmul_int8"]), op_types_to_quantize=["MatMul"],
            nodes_to_quantize=products[1:], per_channel=True, weight_type=QuantType.QInt8,
        )  # fmt: skip
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        sessions = {
            name: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            for name, path in paths.items()
        }
        rows["by_length"] = []
        for seconds in args.seconds:
            x = (0.1 * rng.standard_normal((1, int(seconds * SR)))).astype(np.float32)
            outputs = {name: session.run(None, {"x": x})[0] for name, session in sessions.items()}
            reference = outputs["conv"]
            rms = float(np.sqrt((reference**2).mean()))
            runs = {name: (lambda s=s, x=x: s.run(None, {"x": x})) for name, s in sessions.items()}
            runs["torch"] = lambda x=x: encoder(torch.from_numpy(x))
            samples = {name: [] for name in runs}
            with torch.no_grad():
                for _ in range(args.repeats):
                    for name, run in runs.items():
                        start = time.perf_counter()
                        run()
                        samples[name].append(time.perf_counter() - start)
            times = {name: statistics.median(values) for name, values in samples.items()}
            rows["by_length"].append(
                {
                    "seconds": seconds,
                    "median_s": {name: round(value, 4) for name, value in times.items()},
                    "speedup_over_ort_conv": {
                        name: round(times["conv"] / value, 3) for name, value in times.items()
                    },
                    "matmul_fp32_rel_rms_error": float(
                        np.sqrt(((outputs["matmul"] - reference) ** 2).mean()) / rms
                    ),
                    "matmul_int8_rel_rms_error": float(
                        np.sqrt(((outputs["matmul_int8"] - reference) ** 2).mean()) / rms
                    ),
                }
            )
    report_json(rows, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
