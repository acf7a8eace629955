"""MM-WavLM / MM-Whisper (paper 001, the Interspeech 2025 Task 2 winner): speech + frozen RoBERTa-large text
embeddings, three attribute heads with sigmoid range scaling (Eq. 2), gender prediction (Eq. 1, alpha = 1), 1-CCC.

Real run (needs the corpus and the encoders' weights, e.g. from the Hub cache):

    python examples/train_multimodal_paper001.py --data-dir /data/MSP-PODCAST --output-dir runs/mm-wavlm
    python examples/train_multimodal_paper001.py --data-dir /data/MSP-PODCAST --output-dir runs/mm-whisper \\
        --audio-encoder openai/whisper-large-v3 --no-gender --no-dev-other
    python -c "from hf_ser import SEREnsemble; SEREnsemble(['runs/mm-wavlm', 'runs/mm-whisper']).save_pretrained('runs/paper001')"

Offline smoke run (a generated corpus and tiny random encoders, a minute or two on a CPU):

    python examples/train_multimodal_paper001.py --tiny --output-dir /tmp/mm

The recipe (paper 001, Sec. 2-3): learning rate 5e-5, 50 epochs, head/convolution width 256, inputs cropped to 15 s,
undersampling (every epoch draws min-class-count clips of each of the 10 classes, O and X included), Other (O) and
No agreement (X) rows of the development set moved into training (Table 5 "+ O/X (V)"), and the checkpoint selected
on the development set's mean CCC averaged over class-balanced subsets (Sec. 2.4; `--no-balanced-selection` selects
on the plain CCC). MM-Whisper reads a 15 s window (750 encoder positions, `chunk_length=15`), as the paper and the
authors' release do.
WavLM-large is fine-tuned (its convolutional front end frozen); Whisper-large-v3 and RoBERTa-large are frozen, and
their outputs are computed once (`cache_embeddings`). The batch size is not given in the paper (16 here).

Target numbers (CCC on the development set unless said; paper 001):

    Table 2  WavLM                               A 0.6530  V 0.7000  D 0.5651  mean 0.6394
             MM-WavLM                            A 0.6694  V 0.7334  D 0.5735  mean 0.6588
    Table 3  MM-WavLM + gender prediction        A 0.6662  V 0.7367  D 0.5787  mean 0.6605
    Table 5  MM-WavLM + O/X (V)                  A 0.6655  V 0.7125  D 0.6034  mean 0.6605
    Table 6  (test-3) MM-WavLM + undersampling   A 0.6099  V 0.6189  D 0.4736  mean 0.5675
             (test-3) 2-system ensemble (1st)    A 0.6829  V 0.6420  D 0.4980  mean 0.6076
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import datasets
import torch

from hf_ser import (
    MultimodalDataCollator,
    MultimodalSERConfig,
    MultimodalSERForRegression,
    MultimodalSERProcessor,
    load_msp_podcast,
)
from hf_ser.processing.embedding_cache import (
    SpeakerEmbedder,
    SpeechFrameEmbedder,
    TextEmbedder,
    cache_embeddings,
)
from hf_ser.training.trainer import CCCLossTrainer, SERTrainingArguments, balanced_attribute_metrics

ATTRIBUTES = ("arousal", "valence", "dominance")
OTHER_CLASSES = ("Other", "No agreement")


def move_other_rows_to_training(corpus: datasets.DatasetDict) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Training = train (all 10 classes) + the O/X rows of development; development keeps the 8 primary classes."""
    names = corpus["train"].features["label"].names
    other_ids = {names.index(name) for name in OTHER_CLASSES}
    dev = corpus["validation"]
    dev_other = dev.filter(lambda label: label in other_ids, input_columns="label")
    dev_primary = dev.filter(lambda label: label not in other_ids, input_columns="label")
    return datasets.concatenate_datasets([corpus["train"], dev_other]), dev_primary


def tiny_speaker_embedder() -> SpeakerEmbedder:
    """A tiny random x-vector model (WavLMForXVector) standing in for microsoft/wavlm-base-plus-sv."""
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    config = WavLMConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=(32, 32),
        conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
        num_buckets=16, max_bucket_distance=50, tdnn_dim=(16, 16, 16, 16, 24), xvector_output_dim=16,
    )  # fmt: skip
    torch.manual_seed(1)
    return SpeakerEmbedder(WavLMForXVector(config), Wav2Vec2FeatureExtractor(do_normalize=True))


def tiny_model_and_processor(
    corpus: datasets.Dataset, whisper: bool, use_text: bool, gender: bool, speaker_embedding_size: int = 0
):
    """Tiny random encoders with the real front ends and a locally built tokenizer: for smoke runs only."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, Wav2Vec2FeatureExtractor, WhisperFeatureExtractor

    words = sorted({w for text in corpus["transcript"] if text for w in text.lower().split()})
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, **{w: i + 4 for i, w in enumerate(words)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    text = {
        "model_type": "roberta",
        "vocab_size": len(vocab),
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 130,
        "pad_token_id": 1,
    }
    if whisper:
        audio = {
            "model_type": "whisper",
            "d_model": 32,
            "encoder_layers": 2,
            "encoder_attention_heads": 2,
            "decoder_layers": 1,
            "decoder_attention_heads": 2,
            "encoder_ffn_dim": 64,
            "decoder_ffn_dim": 64,
            "num_mel_bins": 80,
            "max_source_positions": 750,  # paper 001's 15 s window
            "vocab_size": 64,
        }
        extractor = WhisperFeatureExtractor(feature_size=80, chunk_length=15, return_attention_mask=True)
    else:
        audio = {
            "model_type": "wavlm",
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "conv_dim": (32, 32),
            "conv_stride": (5, 4),
            "conv_kernel": (10, 8),
            "num_conv_pos_embeddings": 16,
            "num_conv_pos_embedding_groups": 2,
            "num_buckets": 16,
            "max_bucket_distance": 50,
            "feat_extract_norm": "layer",
            "do_stable_layer_norm": True,
        }
        extractor = Wav2Vec2FeatureExtractor(return_attention_mask=True, do_normalize=True)
    torch.manual_seed(0)
    config = MultimodalSERConfig(
        audio_config=audio,
        text_config=text,
        use_text=use_text,
        num_genders=2 if gender else 0,
        conv_hidden_size=32,
        head_hidden_size=32,
        speaker_embedding_size=speaker_embedding_size,
    )
    return MultimodalSERForRegression(config), MultimodalSERProcessor(extractor, tokenizer)


class DropLastCCCTrainer(CCCLossTrainer):
    """CCC is undefined on one clip: the last training batch is dropped when it would hold a single clip."""

    def get_train_dataloader(self):
        drop_last = self.args.dataloader_drop_last
        self.args.dataloader_drop_last = True
        try:
            return super().get_train_dataloader()
        finally:
            self.args.dataloader_drop_last = drop_last


def eval_batch_size(num_clips: int, batch_size: int) -> int:
    """The smallest batch size >= `batch_size` whose last development batch does not hold a single clip (CCC
    needs two); every clip is still evaluated."""
    size = batch_size
    while num_clips % size == 1 and size < num_clips:
        size += 1
    return size


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", help="MSP-Podcast root (Audios/, Labels/, Transcripts/).")
    parser.add_argument("--tiny", action="store_true", help="Generated corpus and tiny random encoders.")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--audio-encoder", default="microsoft/wavlm-large", help="or openai/whisper-large-v3")
    parser.add_argument("--text-encoder", default="FacebookAI/roberta-large")
    parser.add_argument("--no-text", action="store_true", help="Speech only (Table 2's WavLM row).")
    parser.add_argument("--no-gender", action="store_true", help="No gender head (alpha = 0).")
    parser.add_argument("--no-dev-other", action="store_true", help="Keep dev O/X rows out of training.")
    parser.add_argument("--epochs", type=float, default=50)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-duration", type=float, default=15.0)
    parser.add_argument(
        "--balanced-selection",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Select on paper 001's balanced-subset dev CCC (Sec. 2.4, 'Validation Selection'; the default) or, "
        "with --no-balanced-selection, on the plain dev CCC.",
    )
    parser.add_argument(
        "--speaker-embedding",
        default=None,
        metavar="XVECTOR_MODEL",
        help="Table 3's '+ S Emb': concatenate frozen x-vectors of this WavLMForXVector model (e.g. "
        "microsoft/wavlm-base-plus-sv; paper 001 does not name its extractor). With --tiny, any value uses a tiny "
        "random one.",
    )
    args = parser.parse_args(argv)
    whisper = "whisper" in args.audio_encoder.lower()

    if args.tiny:
        from hf_ser.data.synthetic import make_tiny_corpus

        data_dir = make_tiny_corpus(Path(tempfile.mkdtemp()) / "corpus", n_speakers=4, clips_per_class=2)
    elif args.data_dir:
        data_dir = Path(args.data_dir)
    else:
        parser.error("give --data-dir (the corpus) or --tiny")
    corpus = load_msp_podcast(data_dir, "all", include_other=True)
    if args.no_dev_other:
        names = corpus["validation"].features["label"].names
        other_ids = {names.index(name) for name in OTHER_CLASSES}
        train = corpus["train"]
        dev = corpus["validation"].filter(lambda label: label not in other_ids, input_columns="label")
    else:
        train, dev = move_other_rows_to_training(corpus)

    speaker_embedder = None
    if args.speaker_embedding:
        if args.tiny:
            speaker_embedder = tiny_speaker_embedder()
        else:
            speaker_embedder = SpeakerEmbedder.from_pretrained(args.speaker_embedding)
    speaker_size = speaker_embedder.size if speaker_embedder is not None else 0
    if args.tiny:
        model, processor = tiny_model_and_processor(
            train, whisper, not args.no_text, not args.no_gender, speaker_size
        )
        epochs, batch_size = min(args.epochs, 2), 4
    else:
        model = MultimodalSERForRegression.from_encoders_pretrained(
            args.audio_encoder,
            None if args.no_text else args.text_encoder,
            num_genders=0 if args.no_gender else 2,
            speaker_embedding_size=speaker_size,
        )
        processor = MultimodalSERProcessor.from_encoders_pretrained(args.audio_encoder, args.text_encoder)
        epochs, batch_size = args.epochs, args.batch_size
    # Eq. 2: the sigmoid outputs are mapped to the range of the training labels.
    model.config.set_attribute_range(list(zip(*(train[name] for name in ATTRIBUTES), strict=True)))
    model.config.max_duration_s = args.max_duration

    # Frozen encoders are run once, not every epoch.
    cache_dir = Path(args.output_dir) / "embedding_cache"
    collator_kwargs = {}
    if model.config.use_text:
        embedder = TextEmbedder(model, processor)
        train, dev = (
            cache_embeddings(split, embedder, "text_embeds", input_column="transcript", cache_dir=cache_dir)
            for split in (train, dev)
        )
        collator_kwargs["text_embeds_column"] = "text_embeds"
    if whisper:
        embedder = SpeechFrameEmbedder(model, processor)
        train, dev = (
            cache_embeddings(split, embedder, "audio_frames", cache_dir=cache_dir) for split in (train, dev)
        )
        collator_kwargs["audio_embeds_column"] = "audio_frames"
    if speaker_embedder is not None:
        train, dev = (
            cache_embeddings(split, speaker_embedder, "speaker_embeds", cache_dir=cache_dir)
            for split in (train, dev)
        )
        collator_kwargs["speaker_embeds_column"] = "speaker_embeds"

    training_args = SERTrainingArguments(
        output_dir=args.output_dir,
        learning_rate=args.learning_rate,
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=eval_batch_size(len(dev), batch_size),
        sampling="undersample",
        class_label_column="label",
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="balanced_ccc_mean" if args.balanced_selection else "ccc_mean",
        greater_is_better=True,
        remove_unused_columns=False,
        report_to=[],
        use_cpu=args.tiny or not torch.cuda.is_available(),
    )
    collator = MultimodalDataCollator(
        processor,
        max_duration_s=args.max_duration,
        random_crop=True,
        **collator_kwargs,
    )
    # Both report the development CCC per attribute; the balanced one adds the mean over class-balanced subsets.
    compute_metrics = balanced_attribute_metrics(dev["label"]) if args.balanced_selection else None
    trainer = DropLastCCCTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=dev,
        data_collator=collator,
        compute_metrics=compute_metrics,
    )
    trainer.train()
    metrics = trainer.evaluate()
    print(metrics)
    trainer.save_model(args.output_dir)
    processor.save_pretrained(args.output_dir)
    return metrics


if __name__ == "__main__":
    main()
