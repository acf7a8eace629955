"""`AudioDataCollator`: raw 16 kHz clips to a padded, normalised batch with attention mask and labels.

Long clips are cropped to `max_duration_s` before normalisation: a random window in training (a different view
of the clip every epoch), the centre window in evaluation. Defaults follow the challenge baseline (paper 002:
12 s); paper 001 trains on up to 15 s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..audio import load_input
from ..errors import HFSERError


class CollatorError(HFSERError, ValueError):
    """A batch the collator cannot build (missing column, inconsistent labels)."""


@dataclass
class AudioDataCollator:
    """Collate dataset rows holding audio into model inputs.

    Each row needs an `audio_column` value: a `datasets.Audio` value (a dict-like with `"array"` and
    `"sampling_rate"`) or a 1-D array already at the feature extractor's rate. Clips are converted to mono float32
    at that rate, cropped, then padded and normalised per utterance by `feature_extractor` (which must return an
    attention mask, so that pooling ignores padding).

    Args:
        feature_extractor (`Wav2Vec2FeatureExtractor`): e.g. `hf_ser.build_feature_extractor()`.
        max_duration_s (`float`, *optional*, defaults to 12.0): longest clip fed to the model; `None` keeps full
            clips. 12 s as in the challenge baseline (paper 002); paper 001 uses 15 s.
        random_crop (`bool`, defaults to `True`): crop long clips at a random offset (drawn from torch's global
            RNG, which `Trainer` seeds and restores on resume); `False` takes the centre. [`for_eval`] returns the
            deterministic copy that the hf_ser trainers use for evaluation and prediction. On resuming from a
            checkpoint, `Trainer` restores the RNG after fetching the first batch, so that batch's crops differ
            from the uninterrupted run's; everything after follows the restored state.
        label_columns (`Sequence[str]`, *optional*, defaults to `("label",)`): one integer column gives `labels`
            of shape `(batch,)` (class ids); one float column gives `(batch,)` floats; several columns (e.g.
            `("arousal", "valence", "dominance")`) give `(batch, len(label_columns))` floats; one column of
            sequences (e.g. `"soft_label"`, the annotators' vote distribution) gives `(batch, classes)` floats, the
            soft targets of `FocalLoss`. Rows without these columns (prediction) produce no `labels`.
        aux_label_column (`str`, *optional*): a column turned into the batch's `gender` ids (e.g. `"gender"`, paper
            001's auxiliary task), the key that `MultimodalSERForRegression.forward` and hf_ser's trainers read.
            Missing values (`None`) become -100, ignored by the auxiliary loss.
        aux_label2id (`dict[str, int]`, *optional*): maps string values of `aux_label_column` to ids.
        audio_column (`str`, defaults to `"audio"`).
        class_labels (`bool`, defaults to `False`): the single label column holds class ids: float values (e.g. a
            column with missing values read by pandas) must be whole numbers and become `long` labels; `2.7` raises
            `CollatorError` instead of being truncated to 2.

    Labels are checked: NaN or infinite values in any label column raise `CollatorError` naming the batch rows (and
    their `file`/`id`/audio path), instead of turning the weights into NaN or crashing inside the loss.

    Example:
        >>> collator = AudioDataCollator(build_feature_extractor(), max_duration_s=15.0)
        >>> batch = collator([{"audio": {"array": wave, "sampling_rate": 16000}, "label": 3}])  # doctest: +SKIP
        >>> sorted(batch)  # doctest: +SKIP
        ['attention_mask', 'input_values', 'labels']
    """

    feature_extractor: Any
    max_duration_s: float | None = 12.0
    random_crop: bool = True
    label_columns: Sequence[str] | None = ("label",)
    aux_label_column: str | None = None
    aux_label2id: Mapping[str, int] | None = None
    audio_column: str = "audio"
    class_labels: bool = False

    def __post_init__(self):
        if self.max_duration_s is not None and self.max_duration_s <= 0:
            raise ValueError(f"max_duration_s must be positive (or None), got {self.max_duration_s}.")
        if isinstance(self.label_columns, str):
            self.label_columns = (self.label_columns,)
        if not getattr(self.feature_extractor, "return_attention_mask", False):
            raise ValueError(
                "The feature extractor must return an attention mask (return_attention_mask=True): without it, "
                "padded samples would be pooled as if they were speech."
            )

    @property
    def sampling_rate(self) -> int:
        return int(self.feature_extractor.sampling_rate)

    def for_eval(self) -> AudioDataCollator:
        """The same collator with deterministic (centre) cropping, for evaluation and prediction."""
        return dataclasses.replace(self, random_crop=False)

    # ------------------------------------------------------------------------------------------ audio
    def _waveform(self, row: Mapping[str, Any]) -> np.ndarray:
        if self.audio_column in row:
            audio = row[self.audio_column]
        elif "input_values" in row:
            audio = row["input_values"]
        else:
            raise CollatorError(f"Row has no {self.audio_column!r} column (keys: {sorted(row)}).")
        if audio is None:
            raise CollatorError(f"Row has an empty {self.audio_column!r} value.")
        # The package's one audio decoder (dicts, decoders, paths; bare arrays are at the feature extractor's rate).
        return load_input(audio, sampling_rate=self.sampling_rate, target_sr=self.sampling_rate)

    def crop(self, waveform: np.ndarray) -> np.ndarray:
        """Crop to `max_duration_s`: random window if `random_crop`, else the centre window."""
        if self.max_duration_s is None:
            return waveform
        max_samples = int(round(self.max_duration_s * self.sampling_rate))
        excess = waveform.shape[0] - max_samples
        if excess <= 0:
            return waveform
        start = int(torch.randint(0, excess + 1, ()).item()) if self.random_crop else excess // 2
        return waveform[start : start + max_samples]

    # ------------------------------------------------------------------------------------------ labels
    @staticmethod
    def _row_names(rows: Sequence[Mapping[str, Any]], indices: Sequence[int], audio_column: str) -> str:
        """`3 (clip_0003.wav), 5 (clip_0005.wav)`: batch positions, with the clip's name when the row has one."""
        names = []
        for index in indices[:5]:
            row = rows[index]
            name = next(
                (row[key] for key in ("file", "file_name", "id", "name", "path") if row.get(key)), None
            )
            audio = row.get(audio_column)
            if name is None and isinstance(audio, Mapping) and audio.get("path"):
                name = audio["path"]
            names.append(f"{index} ({name})" if name is not None else str(index))
        more = f" and {len(indices) - 5} more" if len(indices) > 5 else ""
        return ", ".join(names) + more

    def _labels(self, rows: Sequence[Mapping[str, Any]]) -> torch.Tensor | None:
        columns = list(self.label_columns or ())
        if not columns:
            return None
        present = [all(column in row and row[column] is not None for column in columns) for row in rows]
        if not any(present):
            return None
        if not all(present):
            raise CollatorError(
                f"Some rows of the batch lack label columns {columns}; label all rows or none."
            )
        try:
            values = np.asarray([[row[column] for column in columns] for row in rows])
        except ValueError:  # ragged soft labels
            raise CollatorError(f"Label columns {columns} hold sequences of different lengths.") from None
        if values.dtype.kind not in "iufb":
            raise CollatorError(f"Label columns {columns} must be numeric, got {values.dtype} values.")
        if values.dtype.kind == "f":
            # One NaN or infinite target turns the weights into NaN (CCC) or crashes the loss (class ids).
            bad = np.flatnonzero(~np.isfinite(values.reshape(len(rows), -1)).all(axis=1))
            if bad.size:
                raise CollatorError(
                    f"NaN or infinite labels in {columns} at batch rows "
                    f"{self._row_names(rows, bad.tolist(), self.audio_column)}: fix or drop these rows."
                )
        if len(columns) == 1:
            values = values[:, 0]
            if values.ndim == 1 and values.dtype.kind in "iub":
                return torch.as_tensor(values, dtype=torch.long)
            if values.ndim == 1 and self.class_labels:
                whole = values == np.round(values)
                if not whole.all():
                    bad = np.flatnonzero(~whole).tolist()
                    raise CollatorError(
                        f"Class labels in {columns[0]!r} must be whole numbers; batch rows "
                        f"{self._row_names(rows, bad, self.audio_column)} have {float(values[bad[0]])!r}."
                    )
                return torch.as_tensor(values, dtype=torch.long)
        return torch.as_tensor(values, dtype=torch.float32)

    def _aux_labels(self, rows: Sequence[Mapping[str, Any]]) -> torch.Tensor | None:
        column = self.aux_label_column
        if column is None:
            return None
        ids = []
        for row in rows:
            if column not in row:
                raise CollatorError(f"Row has no auxiliary label column {column!r} (keys: {sorted(row)}).")
            value = row[column]
            if value is None:
                ids.append(-100)
            elif isinstance(value, str):
                if self.aux_label2id is None or value not in self.aux_label2id:
                    raise CollatorError(
                        f"{column}={value!r} is a string not in aux_label2id={dict(self.aux_label2id or {})}."
                    )
                ids.append(int(self.aux_label2id[value]))
            else:
                ids.append(int(value))
        return torch.as_tensor(ids, dtype=torch.long)

    # ------------------------------------------------------------------------------------------ batch
    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if len(rows) == 0:
            raise CollatorError("Cannot collate an empty batch.")
        waveforms = [self.crop(self._waveform(row)) for row in rows]
        batch = self.feature_extractor(
            waveforms,
            sampling_rate=self.sampling_rate,
            padding="longest",
            return_attention_mask=True,
            return_tensors="pt",
        )
        batch = dict(batch)
        labels = self._labels(rows)
        if labels is not None:
            batch["labels"] = labels
        aux_labels = self._aux_labels(rows)
        if aux_labels is not None:
            # The auxiliary head's one name, from the collators to the model's loss.
            batch["gender"] = aux_labels
        return batch


__all__ = ["AudioDataCollator", "CollatorError"]
