"""cache_embeddings: computed once, reused from disk, keyed by the function; training on cached frozen-encoder
outputs gives the same losses as encoding on the fly (text branch of WavLM models, speech branch of Whisper)."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch
from transformers import Trainer, TrainingArguments

from hf_ser import MultimodalDataCollator
from hf_ser.processing.embedding_cache import (
    EmbeddingCacheError,
    SpeakerEmbedder,
    SpeechFrameEmbedder,
    TextEmbedder,
    cache_embeddings,
    weights_fingerprint,
)
from tests.tiny import LABELS, TEXTS, tiny_multimodal_model, tiny_processor, waves


def tiny_dataset(n: int = 8) -> datasets.Dataset:
    clips = waves(4) * (n // 4)
    rows = {
        "audio": [{"array": clip, "sampling_rate": 16000} for clip in clips],
        "transcript": (TEXTS * 2)[:n],
        "arousal": [row[0] for row in (LABELS * 2)[:n]],
        "valence": [row[1] for row in (LABELS * 2)[:n]],
        "dominance": [row[2] for row in (LABELS * 2)[:n]],
        "gender": (["Female", "Male"] * n)[:n],
    }
    return datasets.Dataset.from_dict(rows).cast_column("audio", datasets.Audio(sampling_rate=16000))


class CountingEmbedder:
    fingerprint = "mean-and-length-v1"

    def __init__(self):
        self.rows = 0

    def __call__(self, arrays):
        self.rows += len(arrays)
        return np.stack([[float(np.mean(a)), float(len(a))] for a in arrays])


def test_embeddings_are_computed_once_and_reused_from_disk(tmp_path):
    data = tiny_dataset()
    embedder = CountingEmbedder()
    first = cache_embeddings(data, embedder, "stats", batch_size=3, cache_dir=tmp_path)
    assert embedder.rows == len(data)
    expected = [[np.mean(w), len(w)] for w in waves(4) * 2]
    np.testing.assert_allclose(np.array(first["stats"]), expected, rtol=1e-5, atol=1e-6)
    assert list(tmp_path.glob("stats-*.arrow"))

    again = CountingEmbedder()
    second = cache_embeddings(tiny_dataset(), again, "stats", batch_size=3, cache_dir=tmp_path)
    assert again.rows == 0  # read from the cache file
    np.testing.assert_array_equal(np.array(second["stats"]), np.array(first["stats"]))

    changed = CountingEmbedder()
    changed.fingerprint = "mean-and-length-v2"  # another function: recomputed
    cache_embeddings(tiny_dataset(), changed, "stats", batch_size=3, cache_dir=tmp_path)
    assert changed.rows == len(data)


def test_other_rates_are_resampled_by_the_one_decoder(tmp_path):
    """An 8 kHz column is resampled to 16 kHz (as the collators do with the same column), not refused."""
    from hf_ser.audio import load_input

    data = tiny_dataset(4).cast_column("audio", datasets.Audio(sampling_rate=8000))
    got = cache_embeddings(data, CountingEmbedder(), "x", fingerprint="rate", cache_dir=tmp_path)
    expected = [load_input(row["audio"]) for row in data]
    np.testing.assert_allclose(
        np.array(got["x"]), [[np.mean(w), len(w)] for w in expected], rtol=1e-5, atol=1e-6
    )
    assert [len(w) for w in expected] == [len(w) for w in waves(4)]  # back at 16 kHz: the original lengths


def test_bad_requests_raise_clear_errors(tmp_path):
    data = tiny_dataset(4)
    with pytest.raises(EmbeddingCacheError, match="No column"):
        cache_embeddings(data, CountingEmbedder(), "x", input_column="nope")
    with pytest.raises(EmbeddingCacheError, match="already has a column"):
        cache_embeddings(data, CountingEmbedder(), "transcript")
    with pytest.raises(EmbeddingCacheError, match="returned 1 embeddings for 2"):
        cache_embeddings(data, lambda xs: np.zeros((1, 2)), "x", batch_size=2, fingerprint="bad")
    with pytest.raises(EmbeddingCacheError, match="frozen Whisper"):
        SpeechFrameEmbedder(tiny_multimodal_model("wavlm"), tiny_processor())


def test_weights_fingerprint_follows_the_weights():
    model = tiny_multimodal_model(seed=0)
    same = tiny_multimodal_model(seed=0)
    other = tiny_multimodal_model(seed=1)
    assert weights_fingerprint(model.text_encoder) == weights_fingerprint(same.text_encoder)
    assert weights_fingerprint(model.text_encoder) != weights_fingerprint(other.text_encoder)


def train_losses(model, dataset, collator, steps=2):
    args = TrainingArguments(
        output_dir="unused",
        max_steps=steps,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        seed=0,
        save_strategy="no",
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator)
    trainer.train()
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


@pytest.mark.slow  # two short Trainer runs
def test_training_on_cached_text_embeddings_matches_on_the_fly_encoding(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    processor = tiny_processor()
    data = tiny_dataset()
    on_the_fly = train_losses(tiny_multimodal_model(seed=3), data, MultimodalDataCollator(processor))

    cached_model = tiny_multimodal_model(seed=3)
    cached = cache_embeddings(
        data,
        TextEmbedder(cached_model, processor),
        "text_embeds",
        input_column="transcript",
        cache_dir=tmp_path,
    )
    collator = MultimodalDataCollator(processor, text_embeds_column="text_embeds")
    assert "text_input_ids" not in collator([cached[0], cached[1]])
    from_cache = train_losses(cached_model, cached, collator)
    assert len(on_the_fly) == len(from_cache) == 2
    np.testing.assert_allclose(from_cache, on_the_fly, rtol=1e-5)


def test_cached_whisper_frames_give_the_same_loss_as_the_frozen_encoder():
    model = tiny_multimodal_model("whisper", seed=2).eval()
    processor = tiny_processor("whisper")
    data = tiny_dataset(4)
    cached = cache_embeddings(data, SpeechFrameEmbedder(model, processor), "frames", batch_size=2)
    # Whisper frames are cut to each clip's valid length: 10 ms mel frames, halved by the stride-2 convolution.
    assert [len(row) for row in cached["frames"]] == [(len(w) // 160 - 1) // 2 + 1 for w in waves(4)]
    rows = [cached[i] for i in range(4)]
    batch_live = MultimodalDataCollator(processor)(rows)
    batch_cached = MultimodalDataCollator(processor, audio_embeds_column="frames")(rows)
    assert "input_features" not in batch_cached
    with torch.no_grad():
        live = model(**batch_live)
        from_cache = model(**batch_cached)
    torch.testing.assert_close(from_cache.logits, live.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(from_cache.loss, live.loss, atol=1e-5, rtol=1e-5)


def tiny_xvector_embedder() -> SpeakerEmbedder:
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    from tests.tiny import tiny_encoder_config

    encoder = tiny_encoder_config(num_hidden_layers=2)
    encoder.pop("model_type")
    config = WavLMConfig(
        **encoder, tdnn_dim=(16, 16, 16, 16, 24), tdnn_kernel=(5, 3, 3, 1, 1), tdnn_dilation=(1, 2, 3, 1, 1),
        xvector_output_dim=12, num_labels=4,
    )  # fmt: skip
    torch.manual_seed(5)
    return SpeakerEmbedder(WavLMForXVector(config), Wav2Vec2FeatureExtractor(do_normalize=True))


def test_speaker_embeddings_are_cached_and_reach_the_model(tmp_path):
    """Paper 001's "+ S Emb": x-vectors of a (frozen) WavLMForXVector, cached like the text embeddings, reach the
    model through the collator as `speaker_embeddings`, and the model trains with them."""
    embedder = tiny_xvector_embedder()
    data = tiny_dataset(4)
    cached = cache_embeddings(data, embedder, "speaker_embeds", batch_size=2, cache_dir=tmp_path)
    vectors = np.asarray(cached["speaker_embeds"], dtype=np.float32)
    assert vectors.shape == (4, embedder.size)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    # One clip alone gives the cached vector: the cache is the extractor's output, not a batch artefact.
    np.testing.assert_allclose(embedder([waves(4)[1]])[0], vectors[1], rtol=1e-4, atol=1e-5)

    model = tiny_multimodal_model("wavlm", speaker_embedding_size=embedder.size)
    processor = tiny_processor("wavlm")
    rows = [cached[i] for i in range(4)]
    batch = MultimodalDataCollator(processor, speaker_embeds_column="speaker_embeds")(rows)
    torch.testing.assert_close(batch["speaker_embeddings"], torch.from_numpy(vectors))
    model.eval()
    with torch.no_grad():
        out = model(**batch)
        moved = model(**{**batch, "speaker_embeddings": batch["speaker_embeddings"].flip(0)})
    torch.testing.assert_close(
        out.embeddings[:, -embedder.size :], batch["speaker_embeddings"]
    )  # concatenated last
    assert not torch.allclose(out.logits, moved.logits)  # the speaker vector feeds the heads
    model.train()
    loss = model(**batch).loss
    loss.backward()
    assert torch.isfinite(loss) and model.attribute_heads[0][0].weight.grad is not None
    with pytest.raises(EmbeddingCacheError, match="x-vector"):
        SpeakerEmbedder(model, processor)
