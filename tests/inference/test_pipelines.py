"""The `speech-emotion-regression` pipeline: with and without a transcript (a tiny random Whisper as ASR), file and
dict inputs, speech-only attribute models, and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from tokenizers.pre_tokenizers import ByteLevel
from transformers import (
    GenerationConfig,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperProcessor,
    WhisperTokenizer,
    pipeline,
)

from hf_ser import AudioError, MultimodalSERProcessor
from hf_ser.inference.pipelines import SpeechEmotionRegressionPipeline
from tests.tiny import (
    padded_fraction,
    record_batches,
    save_tiny_model,
    save_tiny_multimodal,
    tiny_encoder_config,
    tone,
)

LOW, HIGH = [1.3, 1.6, 1.9], [6.2, 6.5, 6.8]
SPECIALS = [
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|en|>",
    "<|translate|>",
    "<|transcribe|>",
    "<|notimestamps|>",
]


def save_tiny_whisper_asr(path) -> None:
    """A tiny random WhisperForConditionalGeneration with a locally built byte-level tokenizer (garbage text)."""
    vocab = {char: i for i, char in enumerate(sorted(ByteLevel.alphabet()))}
    for token in SPECIALS:
        vocab[token] = len(vocab)
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = WhisperTokenizer(str(path / "vocab.json"), str(path / "merges.txt"))
    end, start = vocab["<|endoftext|>"], vocab["<|startoftranscript|>"]
    config = WhisperConfig(
        vocab_size=len(vocab),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        num_mel_bins=80,
        max_source_positions=100,
        max_target_positions=16,
        pad_token_id=end,
        bos_token_id=end,
        eos_token_id=end,
        decoder_start_token_id=start,
        suppress_tokens=[],
        begin_suppress_tokens=None,
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=start,
        eos_token_id=end,
        pad_token_id=end,
        max_length=6,
        no_timestamps_token_id=vocab["<|notimestamps|>"],
    )
    model.save_pretrained(path)
    WhisperProcessor(WhisperFeatureExtractor(feature_size=80, chunk_length=2), tokenizer).save_pretrained(
        path
    )


class CountingASR:
    """Wraps a real ASR pipeline and counts its calls."""

    def __init__(self, asr):
        self.asr = asr
        self.calls = 0

    def __call__(self, waveform):
        self.calls += 1
        assert waveform.dtype == np.float32 and waveform.ndim == 1
        return self.asr(waveform)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("mm")
    model = save_tiny_multimodal(model_dir, attribute_min=LOW, attribute_max=HIGH).eval()
    asr_dir = tmp_path_factory.mktemp("asr")
    save_tiny_whisper_asr(asr_dir)
    return model_dir, asr_dir, model


def assert_attributes(result):
    assert set(result) >= {"arousal", "valence", "dominance"}
    for name, low, high in zip(("arousal", "valence", "dominance"), LOW, HIGH, strict=True):
        assert isinstance(result[name], float) and low <= result[name] <= high
        assert 1.0 <= result[name] <= 7.0


def test_with_transcript_the_asr_is_not_run_and_the_result_matches_the_model(folders):
    model_dir, asr_dir, model = folders
    asr = CountingASR(pipeline("automatic-speech-recognition", model=str(asr_dir)))
    regressor = pipeline("speech-emotion-regression", model=str(model_dir), asr_model=asr)
    assert isinstance(regressor, SpeechEmotionRegressionPipeline)
    wave = tone(0.7, seed=3)
    result = regressor(wave, transcript="i am so happy today")
    assert asr.calls == 0
    assert_attributes(result)
    batch = MultimodalSERProcessor.from_pretrained(model_dir)(audio=[wave], text=["i am so happy today"])
    with torch.no_grad():
        expected = model(**batch).logits[0].tolist()
    np.testing.assert_allclose(
        [result["arousal"], result["valence"], result["dominance"]], expected, atol=1e-5
    )
    # A different transcript changes the prediction: the text branch is used.
    other = regressor(wave, transcript="this is not good")
    assert other != result


def test_without_transcript_the_configured_asr_model_transcribes_first(folders):
    model_dir, asr_dir, _ = folders
    asr = CountingASR(pipeline("automatic-speech-recognition", model=str(asr_dir)))
    regressor = pipeline("speech-emotion-regression", model=str(model_dir), asr_model=asr)
    wave = tone(0.9, freq=180, seed=4)
    result = regressor(wave, return_transcript=True)
    assert asr.calls == 1
    assert_attributes(result)
    transcript = asr.asr(wave.copy())["text"].strip()
    assert result["transcript"] == transcript
    # Same numbers as giving that transcript explicitly.
    explicit = regressor(wave, transcript=transcript)
    np.testing.assert_allclose(
        [result[k] for k in ("arousal", "valence", "dominance")],
        [explicit[k] for k in ("arousal", "valence", "dominance")],
        atol=1e-6,
    )
    # A model id / folder string is loaded as pipeline("automatic-speech-recognition") on first use.
    by_name = pipeline("speech-emotion-regression", model=str(model_dir), asr_model=str(asr_dir))
    assert by_name._asr is None
    assert_attributes(by_name({"array": wave, "sampling_rate": 16000}))
    assert by_name._asr.task == "automatic-speech-recognition"


def test_file_and_dict_inputs_are_resampled_and_lists_give_lists(folders, tmp_path):
    model_dir, _, _ = folders
    regressor = pipeline("speech-emotion-regression", model=str(model_dir))
    wave16 = tone(0.6, seed=7)
    wave22 = tone(0.6, sr=22050, seed=7)
    sf.write(tmp_path / "clip.wav", wave22, 22050)
    from_file = regressor(str(tmp_path / "clip.wav"), transcript="great")
    from_dict = regressor({"array": wave22, "sampling_rate": 22050, "transcript": "great"})
    assert_attributes(from_file)
    assert from_file == pytest.approx(from_dict, abs=1e-6)
    results = regressor(
        [{"array": wave16, "sampling_rate": 16000, "transcript": t} for t in ("great", "sad")]
    )
    assert isinstance(results, list) and len(results) == 2
    for result in results:
        assert_attributes(result)


def test_speech_only_attribute_model_needs_no_transcript(tmp_path):
    save_tiny_model(tmp_path, problem_type="regression")
    regressor = pipeline(
        "speech-emotion-regression", model=str(tmp_path), asr_model=lambda w: pytest.fail("ASR")
    )
    result = regressor(tone(0.5))
    assert set(result) == {"arousal", "valence", "dominance"}


def test_bad_inputs_raise_clear_errors(folders):
    model_dir, _, _ = folders
    regressor = pipeline("speech-emotion-regression", model=str(model_dir))
    with pytest.raises(AudioError, match="empty"):
        regressor(np.zeros(0, dtype=np.float32), transcript="x")
    with pytest.raises(AudioError, match="sampling_rate"):
        regressor({"array": tone(0.5)}, transcript="x")
    with pytest.raises(AudioError, match="Unsupported input"):
        regressor(12, transcript="x")


# ------------------------------------------------------------------------------- length-bucketed batches
def varied_clips(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        tone(float(rng.uniform(0.3, 2.0)), freq=float(rng.uniform(120, 300)), seed=i) for i in range(count)
    ]


@pytest.mark.parametrize("window", [32, 1])
def test_audio_classification_batches_group_clips_by_length_and_keep_input_order(tmp_path, window):
    from hf_ser.inference.pipelines import SERAudioClassificationPipeline

    save_tiny_model(tmp_path)
    classifier = pipeline("audio-classification", model=str(tmp_path), top_k=None)
    assert isinstance(classifier, SERAudioClassificationPipeline)
    classifier.bucket_window_batches = window
    clips = varied_clips(13)
    alone = [classifier(clip) for clip in clips]
    masks = record_batches(classifier.model)
    batched = classifier(clips, batch_size=4)
    assert len(batched) == len(clips)
    for one, many in zip(alone, batched, strict=True):
        assert [r["label"] for r in one] == [r["label"] for r in many]
        np.testing.assert_allclose([r["score"] for r in one], [r["score"] for r in many], atol=1e-5)
    # Bucketed: fewer padded samples than transformers' arrival-order batches of the same clips.
    arrival = []
    for start in range(0, len(clips), 4):
        lengths = [len(c) for c in clips[start : start + 4]]
        arrival.append(torch.arange(max(lengths))[None] < torch.tensor(lengths)[:, None])
    if window == 1:
        # A window of one batch: sorted within it, so the batches are the arrival-order ones.
        assert padded_fraction(masks) == pytest.approx(padded_fraction(arrival))
    else:
        assert padded_fraction(masks) < padded_fraction(arrival)
        # One window: batches run longest first, each holding consecutive clips of the sorted order.
        longest = [int(m.sum(dim=1).max()) for m in masks]
        assert longest == sorted(longest, reverse=True)


def test_audio_classification_batches_datasets_lazily_with_workers(tmp_path):
    from datasets import Dataset
    from transformers.pipelines.pt_utils import KeyDataset

    save_tiny_model(tmp_path)
    classifier = pipeline("audio-classification", model=str(tmp_path), top_k=None)
    classifier.bucket_window_batches = 2
    clips = varied_clips(11, seed=4)
    data = Dataset.from_dict({"audio": [{"array": c, "sampling_rate": 16000} for c in clips]})
    masks = record_batches(classifier.model)
    stream = classifier(KeyDataset(data.with_format("numpy"), "audio"), batch_size=3, num_workers=2)
    assert not isinstance(stream, list)  # an iterator, consumed window by window
    first = next(iter(stream))
    assert len(masks) == 2  # only the first window (2 batches of 3) has run
    batched = [first, *stream]
    assert len(batched) == len(clips)
    for clip, many in zip(clips, batched, strict=True):
        one = classifier(clip)
        np.testing.assert_allclose([r["score"] for r in one], [r["score"] for r in many], atol=1e-5)


def test_audio_classification_batches_equal_lengths_only_for_group_norm_encoders(tmp_path):
    save_tiny_model(tmp_path, group_norm=True)
    classifier = pipeline("audio-classification", model=str(tmp_path), top_k=None)
    clips = varied_clips(6) + varied_clips(3, seed=5)[:1] * 3  # three clips of one length
    alone = [classifier(clip) for clip in clips]
    masks = record_batches(classifier.model)
    batched = classifier(clips, batch_size=4)
    assert all(bool(m.all()) for m in masks)  # never padded
    assert max(m.shape[0] for m in masks) == 3  # the equal-length clips still share a batch
    for one, many in zip(alone, batched, strict=True):
        np.testing.assert_allclose([r["score"] for r in one], [r["score"] for r in many], atol=1e-5)


def test_audio_classification_of_other_models_is_transformers_pipeline_unchanged(tmp_path):
    from transformers import AudioClassificationPipeline, Wav2Vec2Config, Wav2Vec2ForSequenceClassification

    from hf_ser import build_feature_extractor

    config = {k: v for k, v in tiny_encoder_config("wav2vec2").items() if k != "model_type"}
    torch.manual_seed(0)
    Wav2Vec2ForSequenceClassification(Wav2Vec2Config(**config, num_labels=3)).save_pretrained(tmp_path)
    build_feature_extractor().save_pretrained(tmp_path)
    ours = pipeline("audio-classification", model=str(tmp_path))
    theirs = pipeline("audio-classification", model=str(tmp_path), pipeline_class=AudioClassificationPipeline)
    assert not ours.buckets_by_length()
    clips = varied_clips(7)
    masks = record_batches(ours.model)
    assert ours(clips, batch_size=3) == theirs(clips, batch_size=3)
    assert [m.shape[0] for m in masks] == [3, 3, 1]  # arrival order, as transformers batches


def test_regression_pipeline_batches_match_single_calls(folders):
    model_dir, _, _ = folders
    regressor = pipeline("speech-emotion-regression", model=str(model_dir))
    clips = varied_clips(7, seed=2)
    texts = ["great", "so very sad today", "no", "i am angry", "fine thanks", "what", "okay then"]
    inputs = [
        {"array": c, "sampling_rate": 16000, "transcript": t} for c, t in zip(clips, texts, strict=True)
    ]
    alone = [regressor(item, return_transcript=True) for item in inputs]
    masks = record_batches(regressor.model)
    batched = regressor(inputs, batch_size=3, return_transcript=True)
    assert [r["transcript"] for r in batched] == texts
    for one, many in zip(alone, batched, strict=True):
        assert_attributes(many)
        for name in ("arousal", "valence", "dominance"):
            assert many[name] == pytest.approx(one[name], abs=1e-5)
    assert [m.shape[0] for m in masks] == [3, 3, 1]
    longest = [int(m.sum(dim=1).max()) for m in masks]
    assert longest == sorted(longest, reverse=True)
