"""Paper 004's Table I (Purohit & Magimai.-Doss): the emotion information in the utterance embeddings of wav2vec2
systems, measured with a linear SVM (C chosen by 5-fold cross-validation inside each training fold) under
leave-one-session-out cross-validation, UAR and WAR per system and layer (`hf_ser.evaluation.probing`).

Systems are `NAME=MODEL`: a Hub id or folder (e.g. the pretrained "PT" and the ASR checkpoints), or, for systems
fine-tuned once per fold (SER, ASR(x) -> SER from `two_step_asr_then_ser_paper004.py --save-fold-models`), a path
with `{session}` standing for the held-out session:

    python examples/probe_table1_paper004.py --data-dir /data/iemocap4 --output-dir runs/table1 \\
        --system PT=facebook/wav2vec2-base --system ASR10=facebook/wav2vec2-base-10m \\
        --system ASR100=facebook/wav2vec2-base-100h --system ASR960=facebook/wav2vec2-base-960h \\
        --system SER='runs/paper004/folds/PT->SER/{session}' \\
        --system 'ASR100->SER=runs/paper004/folds/ASR->SER/{session}'

Offline smoke run (generated clips, tiny random "pretrained" and "ASR" checkpoints):

    python examples/probe_table1_paper004.py --tiny --output-dir /tmp/table1

Writes `table1.csv` (system, layer, UAR, WAR: mean over folds as the paper reports, and pooled) and prints it.
Target (paper 004, Table I, IEMOCAP UAR/WAR): PT 56.76/56.26, SER 64.98/63.89, ASR10 55.18/53.59,
ASR100 60.03/58.09, ASR960 49.38/49.34, ASR10->SER 60.93/59.52, ASR100->SER 64.59/63.68, ASR960->SER 63.57/62.56.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

import numpy as np
from transformers import AutoModel

from hf_ser.evaluation.probing import DEFAULT_C_GRID, layer_embeddings, svm_probe, table_rows

sys.path.insert(0, str(Path(__file__).parent))
from two_step_asr_then_ser_paper004 import CLASSES, read_corpus, tiny_checkpoints, tiny_corpus  # noqa: E402


def load_encoder(path: str):
    """The speech encoder of a Hub model or folder: a plain wav2vec2, the encoder of a CTC model, or the `encoder`
    of a fine-tuned hf_ser classifier."""
    import hf_ser  # noqa: F401  (registers hf_ser's classes)

    model = AutoModel.from_pretrained(path)
    return getattr(model, "encoder", None) if hasattr(model, "head") else getattr(model, "wav2vec2", model)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, help="IEMOCAP- or MSP-IMPROV-style folder with labels.csv.")
    parser.add_argument("--tiny", action="store_true", help="Generated clips and tiny random checkpoints.")
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--system", action="append", default=[], metavar="NAME=MODEL", help="Repeatable.")
    parser.add_argument(
        "--layers", type=int, nargs="+", default=None, help="Hidden-state indices (default: the last layer)."
    )
    parser.add_argument("--c-grid", type=float, nargs="+", default=list(DEFAULT_C_GRID))
    return parser


def main(argv: list[str] | None = None) -> list[dict]:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.tiny:
        corpus = tiny_corpus(n_sessions=3, per_class=6)
        pretrained, asr = tiny_checkpoints(Path(tempfile.mkdtemp()))
        systems = dict(item.split("=", 1) for item in args.system) or {"PT": pretrained, "ASR": asr}
    else:
        if args.data_dir is None:
            parser.error("--data-dir is required without --tiny")
        if not args.system:
            parser.error("give at least one --system NAME=MODEL")
        corpus = read_corpus(args.data_dir)
        systems = dict(item.split("=", 1) for item in args.system)
    waveforms = [np.asarray(a, dtype=np.float32) for a in corpus["audio"]]
    labels, sessions = np.asarray(corpus["label"]), np.asarray(corpus["session"])

    results = []
    for name, path in systems.items():
        if (
            "{session}" in path
        ):  # fine-tuned per fold: each fold's SVM reads the model that never saw its session
            per_layer: dict[int, dict[str, np.ndarray]] = {}
            for session in sorted(set(sessions.tolist())):
                encoder = load_encoder(path.format(session=session))
                for layer, values in layer_embeddings(encoder, waveforms, args.layers).items():
                    per_layer.setdefault(layer, {})[session] = values
        else:
            per_layer = layer_embeddings(load_encoder(path), waveforms, args.layers)
        for layer, embeddings in sorted(per_layer.items()):
            result = svm_probe(
                embeddings, labels, sessions, system=name, layer=layer, c_grid=args.c_grid,
                num_classes=len(CLASSES),
            )  # fmt: skip
            results.append(result)
            print(
                f"{name} layer {layer}: UAR {result.uar:.2f}  WAR {result.war:.2f}  ({len(result.folds)} folds)"
            )

    rows = table_rows(results)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    with open(args.output_dir / "table1.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.output_dir / 'table1.csv'}")
    return rows


if __name__ == "__main__":
    main()
