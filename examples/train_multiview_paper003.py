"""IF-MVSE (paper 003): embed MSP-Podcast once with frozen Whisper-large-v3 / WavLM-large / HuBERT-large, train the
multi-view fusion model on the cached embeddings with 1-CCC, then search the Eq. 7 weights on the development set.

Real run (needs the corpus and the three encoders' weights, e.g. from the Hub cache):

    python examples/train_multiview_paper003.py --data-dir /data/MSP-PODCAST --output-dir runs/ifmvse

Offline smoke run (a generated corpus and tiny random encoders; about a minute on a laptop CPU):

    python examples/train_multiview_paper003.py --tiny --output-dir /tmp/ifmvse

Paper 003's hyperparameters are the defaults: one model per emotional attribute (Sec. 3.2; `--no-per-attribute` for
one model with three outputs), AdamW, batch size 32, learning rate 1e-5, 80 epochs, MLP (1024, 512, 1) with ReLU and
dropout 0.5, weights searched on every development clip with step 0.1 then 0.01. Not implemented: the "dual-branch
structure" of the MLP (Sec. 3.2: "each large-model-encoded speech feature traverses two identical MLP paths"), which
the paper does not define further (how the two paths' outputs combine, whether they share the input); each score
set here has one MLP. See docs/fidelity.md.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, Trainer, TrainingArguments

from hf_ser import (
    MultiViewSERConfig,
    MultiViewSERForRegression,
    build_feature_extractor,
    load_metric,
    load_msp_podcast,
)
from hf_ser.inference.fusion_search import search_fusion_weights
from hf_ser.models.configuration_multiview import PAPER_VIEW_ENCODERS
from hf_ser.models.modeling_multiview import mean_pooled_embeddings
from hf_ser.processing.embedding_cache import cache_embeddings
from hf_ser.publishing.model_card import model_card_data

ATTRIBUTES = ("arousal", "valence", "dominance")


def pretrained_encoders(names: dict[str, str]) -> dict[str, tuple]:
    """Frozen encoders and their feature extractors; Whisper keeps only its encoder (paper 003, Sec. 2.1)."""
    encoders = {}
    for view, name in names.items():
        model = AutoModel.from_pretrained(name, use_safetensors=True)
        if getattr(model.config, "is_encoder_decoder", False):
            model = model.get_encoder()
        extractor = AutoFeatureExtractor.from_pretrained(name)
        if "input_values" in extractor.model_input_names:
            extractor = build_feature_extractor(name)  # with the attention mask the masked mean needs
        encoders[view] = (model.eval().requires_grad_(False), extractor)
    return encoders


def tiny_encoders() -> dict[str, tuple]:
    """Tiny random stand-ins with the real front ends (no download): for smoke runs only."""
    from transformers import WhisperConfig, WhisperFeatureExtractor
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    torch.manual_seed(0)
    common = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 37}
    conv = {
        "conv_dim": (16, 16),
        "conv_stride": (5, 4),
        "conv_kernel": (10, 8),
        "num_conv_pos_embeddings": 16,
    }
    encoders = {}
    for view in ("wavlm", "hubert"):
        config = AutoConfig.for_model(view, **common, **conv, num_conv_pos_embedding_groups=2)
        encoders[view] = (AutoModel.from_config(config).eval(), build_feature_extractor())
    whisper = WhisperEncoder(
        WhisperConfig(
            d_model=40,
            encoder_layers=2,
            encoder_attention_heads=2,
            encoder_ffn_dim=64,
            num_mel_bins=80,
            max_source_positions=500,
        )
    ).eval()
    encoders["whisper"] = (whisper, WhisperFeatureExtractor(feature_size=80, chunk_length=10))
    return encoders


def embed(dataset, encoders: dict[str, tuple], batch_size: int, cache_dir: Path, fingerprint: str):
    """Add one `<view>_embedding` column per view with `hf_ser.processing.embedding_cache.cache_embeddings`: the frozen encoders
    run once, the columns are cached on disk (a rerun reads them back), and every epoch reads the columns."""
    for view, (model, extractor) in encoders.items():

        def embed_fn(waveforms, model=model, extractor=extractor):
            return mean_pooled_embeddings(model, extractor, waveforms, batch_size)

        dataset = cache_embeddings(
            dataset, embed_fn, f"{view}_embedding", batch_size, cache_dir, fingerprint=f"{fingerprint}:{view}"
        )
    return dataset.remove_columns(["audio"])


def collate(views: list[str], attributes: list[str]):
    def collator(rows):
        batch = {
            f"{v}_embedding": torch.tensor(np.stack([r[f"{v}_embedding"] for r in rows]), dtype=torch.float32)
            for v in views
        }
        if all(a in rows[0] for a in attributes):  # prediction runs without labels
            batch["labels"] = torch.tensor([[r[a] for a in attributes] for r in rows], dtype=torch.float32)
        return batch

    return collator


def predict_score_sets(trainer: Trainer, dataset, attributes: list[str]) -> np.ndarray:
    """(n, score sets, outputs) for every clip of `dataset`: predicted without labels, so no loss is computed and
    the last partial batch is kept (training drops it, since CCC needs two clips, but the weight search must see
    every development clip)."""
    inputs = dataset.remove_columns([c for c in attributes if c in dataset.column_names])
    drop_last = trainer.args.dataloader_drop_last
    trainer.args.dataloader_drop_last = False
    try:
        prediction = trainer.predict(inputs)
    finally:
        trainer.args.dataloader_drop_last = drop_last
    score_sets = prediction.predictions[1]  # MultiViewSEROutput.score_sets
    if len(score_sets) != len(dataset):
        raise RuntimeError(f"{len(score_sets)} predictions for {len(dataset)} development clips.")
    return score_sets


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", help="MSP-Podcast root (Audios/, Labels/).")
    parser.add_argument("--tiny", action="store_true", help="Generated corpus and tiny random encoders.")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--epochs", type=float, default=80)
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--embed-batch-size", type=int, default=4)
    parser.add_argument(
        "--per-attribute",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="One model (and one weight search) per attribute, as paper 003 trains them (default); "
        "--no-per-attribute trains one model with three outputs.",
    )
    args = parser.parse_args(argv)
    output = Path(args.output_dir)

    if args.tiny:
        from hf_ser.data.synthetic import make_tiny_corpus

        data_dir = make_tiny_corpus(Path(tempfile.mkdtemp()) / "corpus", n_speakers=4, clips_per_class=2)
        encoders = tiny_encoders()
        # Tiny encoders, tiny data: a larger step size than the paper's, and fewer epochs.
        args.learning_rate, args.epochs, args.batch_size = 3e-3, min(args.epochs, 40), 8
    else:
        if not args.data_dir:
            parser.error("--data-dir is required without --tiny")
        data_dir = args.data_dir
        encoders = pretrained_encoders(PAPER_VIEW_ENCODERS)

    corpus = load_msp_podcast(data_dir, "attributes")
    fingerprint = "tiny-random-seed0" if args.tiny else "paper003-encoders"
    cache_dir = output / "embedding_cache"
    train = embed(corpus["train"], encoders, args.embed_batch_size, cache_dir, fingerprint)
    dev = embed(corpus["validation"], encoders, args.embed_batch_size, cache_dir, fingerprint)

    views = ["whisper", "wavlm", "hubert"]
    dims = [len(train[0][f"{v}_embedding"]) for v in views]
    # With real encoders the dims are the paper's (1280, 1024, 1024); tiny ones get a small fusion size.
    sizes = {} if dims[1] == 1024 else {"fusion_size": dims[1], "gate_size": dims[1], "mlp_hidden_size": 16}
    # Paper 003 (Sec. 3.2) trains and tunes one model per emotional attribute.
    groups = [[a] for a in ATTRIBUTES] if args.per_attribute else [list(ATTRIBUTES)]
    fused_columns, labels = {}, np.asarray([[row[a] for a in ATTRIBUTES] for row in dev], dtype=np.float64)
    for attributes in groups:
        config = MultiViewSERConfig(
            view_names=views,
            view_dims=dims,
            view_encoders=dict(PAPER_VIEW_ENCODERS),
            id2label=dict(enumerate(attributes)),
            label2id={a: i for i, a in enumerate(attributes)},
            **sizes,
        )
        torch.manual_seed(0)
        model = MultiViewSERForRegression(config)
        trainer = Trainer(
            model=model,
            args=TrainingArguments(
                output_dir=str(output / "checkpoints" / "-".join(attributes)),
                per_device_train_batch_size=args.batch_size,
                per_device_eval_batch_size=args.batch_size,
                learning_rate=args.learning_rate,
                num_train_epochs=args.epochs,
                optim="adamw_torch",
                remove_unused_columns=False,  # the view columns reach forward() through **kwargs
                dataloader_drop_last=True,  # CCC needs 2+ samples per training batch
                save_strategy="no",
                report_to=[],
                logging_steps=10,
                use_cpu=not torch.cuda.is_available(),
            ),
            train_dataset=train,
            data_collator=collate(views, attributes),
        )
        trainer.train()

        # Eq. 7: search the score-set weights on the development set (coarse 0.1, then 0.01), one row per output.
        score_sets = predict_score_sets(trainer, dev, attributes)
        group_labels = labels[:, [ATTRIBUTES.index(a) for a in attributes]]
        result = search_fusion_weights(score_sets, group_labels)
        model.set_fusion_weights(result.weights)
        fused = (score_sets * result.weights.T[None]).sum(axis=1)
        # Evaluated outside the trainer, so recorded on the model's card by hand (save_pretrained writes it).
        # The weights were searched on this same development set: the card calls it "validation".
        card = model_card_data(model)
        for index, attribute in enumerate(attributes):
            value = load_metric("ccc").compute(
                predictions=fused[:, index].tolist(), references=group_labels[:, index].tolist()
            )["ccc"]
            card.add_eval_results("validation", {f"ccc_{attribute}": value})
        for index, (attribute, weights) in enumerate(zip(attributes, result.weights, strict=True)):
            print(f"{attribute}: weights {np.round(weights, 2).tolist()}")
            fused_columns[attribute] = fused[:, index]
        folder = output / ("model" if len(groups) == 1 else f"model-{attributes[0]}")
        model.save_pretrained(folder)
        print(f"saved to {folder}")

    fused = np.stack([fused_columns[a] for a in ATTRIBUTES], axis=1)
    ccc = load_metric("ccc").compute(predictions=fused.tolist(), references=labels.tolist())
    print("development CCC with the searched weights:", {k: round(v, 4) for k, v in ccc.items()})
    return ccc


if __name__ == "__main__":
    main()
