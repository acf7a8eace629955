"""AudioDataCollator: padding, attention masks, cropping, labels, resampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import Wav2Vec2FeatureExtractor

from hf_ser import build_feature_extractor
from hf_ser.processing.data_collator import AudioDataCollator, CollatorError
from tests.tiny import tone

SR = 16000


def extractor(**kwargs) -> Wav2Vec2FeatureExtractor:
    return Wav2Vec2FeatureExtractor(**{"sampling_rate": SR, "return_attention_mask": True, **kwargs})


def ramp(seconds: float) -> np.ndarray:
    """Strictly increasing samples: the position of a crop can be read back from its values."""
    return np.linspace(-1, 1, int(seconds * SR), dtype=np.float32)


def test_pads_builds_mask_and_normalises_each_clip_over_its_own_samples():
    collator = AudioDataCollator(build_feature_extractor(), max_duration_s=None)
    short, long = tone(0.5, freq=200) * 3 + 0.5, tone(1.0, freq=300)
    batch = collator(
        [{"audio": {"array": short, "sampling_rate": SR}, "label": 2}, {"audio": long, "label": 5}]
    )
    assert batch["input_values"].shape == (2, SR)
    assert batch["attention_mask"].tolist()[0] == [1] * (SR // 2) + [0] * (SR // 2)
    assert batch["attention_mask"][1].all()
    valid = batch["input_values"][0, : SR // 2]
    assert abs(valid.mean().item()) < 1e-3 and abs(valid.std().item() - 1) < 1e-2
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == [2, 5]


def test_attribute_labels_and_aux_labels():
    collator = AudioDataCollator(
        build_feature_extractor(),
        label_columns=("arousal", "valence", "dominance"),
        aux_label_column="gender",
        aux_label2id={"Female": 0, "Male": 1},
    )
    rows = [
        {"audio": tone(0.3), "arousal": 4.0, "valence": 2.5, "dominance": 6.0, "gender": "Male"},
        {"audio": tone(0.3), "arousal": 1.0, "valence": 3.0, "dominance": 2.0, "gender": None},
    ]
    batch = collator(rows)
    assert batch["labels"].dtype == torch.float32
    assert batch["labels"].tolist() == [[4.0, 2.5, 6.0], [1.0, 3.0, 2.0]]
    # The key the models' forward and hf_ser's trainers read (one name end to end).
    assert "aux_labels" not in batch and batch["gender"].tolist() == [1, -100]
    with pytest.raises(CollatorError, match="aux_label2id"):
        collator([{**rows[0], "gender": "Unknown"}])


def test_rows_without_labels_give_no_labels_and_mixed_rows_raise():
    collator = AudioDataCollator(build_feature_extractor())
    assert "labels" not in collator([{"audio": tone(0.2)}])
    with pytest.raises(CollatorError, match="label all rows or none"):
        collator([{"audio": tone(0.2), "label": 1}, {"audio": tone(0.2)}])


def test_random_crop_in_training_and_centre_crop_in_evaluation():
    collator = AudioDataCollator(extractor(do_normalize=False), max_duration_s=0.25)
    wave = ramp(1.0)
    starts = set()
    for _ in range(20):
        cropped = collator.crop(wave)
        assert cropped.shape == (4000,)
        start = int(np.searchsorted(wave, cropped[0]))
        np.testing.assert_array_equal(cropped, wave[start : start + 4000])
        starts.add(start)
    assert len(starts) > 5  # random offsets
    evaluator = collator.for_eval()
    assert not evaluator.random_crop and collator.random_crop
    np.testing.assert_array_equal(evaluator.crop(wave), wave[6000:10000])
    batch = evaluator([{"audio": wave}, {"audio": ramp(0.1)}])
    assert batch["input_values"].shape == (2, 4000)
    assert batch["attention_mask"].sum(dim=1).tolist() == [4000, 1600]
    # A short clip is never cropped.
    np.testing.assert_array_equal(collator.crop(ramp(0.2)), ramp(0.2))


def test_random_crop_follows_torch_seed():
    collator = AudioDataCollator(build_feature_extractor(), max_duration_s=0.25)
    wave = ramp(1.0)
    torch.manual_seed(0)
    first = collator.crop(wave)
    torch.manual_seed(0)
    np.testing.assert_array_equal(collator.crop(wave), first)


def test_resamples_datasets_audio_values(tmp_path):
    import soundfile as sf
    from datasets import Audio, Dataset

    path = tmp_path / "clip.wav"
    sf.write(path, tone(0.5, sr=8000), 8000)
    dataset = Dataset.from_dict({"audio": [str(path)], "label": [3]}).cast_column("audio", Audio())
    batch = AudioDataCollator(build_feature_extractor())([dataset[0]])
    assert batch["input_values"].shape == (1, SR // 2)  # 8 kHz resampled to 16 kHz
    assert batch["labels"].tolist() == [3]


def test_bad_configuration_and_input_raise():
    with pytest.raises(ValueError, match="max_duration_s"):
        AudioDataCollator(build_feature_extractor(), max_duration_s=0)
    no_mask = Wav2Vec2FeatureExtractor(return_attention_mask=False)
    with pytest.raises(ValueError, match="attention mask"):
        AudioDataCollator(no_mask)
    collator = AudioDataCollator(build_feature_extractor())
    with pytest.raises(CollatorError, match="no 'audio' column"):
        collator([{"label": 1}])
    with pytest.raises(CollatorError, match="empty batch"):
        collator([])
    with pytest.raises(ValueError, match="empty|NaN"):
        collator([{"audio": np.full(1000, np.nan, dtype=np.float32)}])


def test_soft_label_column_gives_class_distributions():
    collator = AudioDataCollator(build_feature_extractor(), label_columns="soft_label")
    rows = [
        {"audio": tone(0.2), "soft_label": [0.5, 0.25, 0.25]},
        {"audio": tone(0.2), "soft_label": [0, 1, 0]},
    ]
    batch = collator(rows)
    assert batch["labels"].dtype == torch.float32
    assert batch["labels"].tolist() == [[0.5, 0.25, 0.25], [0.0, 1.0, 0.0]]
    one_hot = collator([{"audio": tone(0.2), "soft_label": [0, 1, 0]}])["labels"]
    assert one_hot.dtype == torch.float32 and one_hot.tolist() == [[0.0, 1.0, 0.0]]
