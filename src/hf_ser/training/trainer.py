"""Thin `transformers.Trainer` subclasses for speech emotion recognition.

- `FocalLossTrainer`: categorical emotions with focal loss (paper 000) or, with `focal_gamma=0`, (weighted)
  cross-entropy (paper 002's baseline, inverse-frequency weights N / (C * n_c)).
- `CCCLossTrainer`: emotional attributes with 1 - CCC summed over arousal, valence and dominance (papers 001, 002).
- `SERTrainingArguments`: `TrainingArguments` plus class-balanced sampling (paper 001's per-epoch undersampling or
  balanced batches) and the weight of an auxiliary loss (paper 001's gender head, Eq. 1, alpha = 1).
- `classification_metrics`, `attribute_metrics`, `balanced_attribute_metrics`: `compute_metrics` builders for
  model selection on the development set's macro-F1 / mean CCC (the challenge metrics, paper 002) and paper 001's
  balanced-subset CCC.

The model, through its config, owns its loss. The trainers write the loss arguments they are given (`focal_gamma`,
`class_weights`, `ccc_reduction`, `attribute_weights`, `SERTrainingArguments.aux_loss_weight`) into
`model.config`, where hf_ser's models read them at every forward pass (`hf_ser.models.losses.loss_from_config`); a value
given to a trainer takes precedence over the config's and replaces it there (with a warning when it differs), so
the saved `config.json` describes the loss that was trained. Models from outside hf_ser (plain transformers audio
classifiers, any module returning `logits`) get the same settings written into their config, and the trainer
computes the loss from their logits with them. Beyond that, the trainers choose the default metrics and the
training sampler, and evaluate with a deterministic collator in a length-sorted order (`eval_length_bucketing`),
returning predictions in dataset order.

Both trainers add a `hf_ser.publishing.model_card.ModelCardCallback` (unless one is given), so the training set-up and the
evaluation results reach the model's card data (`model.model_card_data`) and the README.md that `save_pretrained`
writes.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from transformers import EvalPrediction, Trainer, TrainerCallback, TrainingArguments

from ..inference.predict import pads_exactly
from ..models.losses import (
    CCC_REDUCTIONS,
    CLASSIFICATION_LOSSES,
    auxiliary_cross_entropy,
    loss_from_config,
    set_inverse_frequency_class_weights,
)
from ..models.modeling_base import SERPreTrainedModel
from ..publishing.model_card import ModelCardCallback, model_card_data
from .checkpoints import resolve_resume_checkpoint
from .sampler import (
    ClassBalancedBatchSampler,
    ClassBalancedUndersampler,
    LengthSortedSampler,
    RandomEpochSampler,
    _EpochSeededSampler,
    clip_durations,
    labels_from_dataset,
)

logger = logging.getLogger(__name__)

SAMPLING_CHOICES = ("none", "undersample", "balanced_batches")


@dataclass
class SERTrainingArguments(TrainingArguments):
    """`TrainingArguments` with the SER training options of papers 000-002. Only adds fields.

    Args:
        sampling (`str`, defaults to `"none"`): `"undersample"`: each epoch draws min-class-count clips per class,
            re-drawn every epoch (paper 001, Sec. 3); `"balanced_batches"`: every batch holds each class equally
            often (the batch balancing surveyed in paper 002); `"none"`: the usual random order.
        class_label_column (`str`, defaults to `"label"`): the dataset column with primary-emotion class ids, used
            by the balanced samplers and by `class_weights="inverse_frequency"`. For attribute training on
            MSP-Podcast's `"all"` configuration it is the primary emotion, as in paper 001.
        sampling_ignore_index (`int`, *optional*): a class id the samplers leave out (e.g. clips without an
            agreed primary emotion).
        aux_loss_weight (`float`, *optional*): alpha of paper 001's Eq. 1, the weight of the cross-entropy of the
            model's gender head (`aux_logits`) against the batch's `gender` labels; 0 turns it off. The trainers
            write it into `model.config.gender_loss_weight`; `None` (default) leaves the config's value (paper 001:
            1.0).
        remove_unused_columns (`bool`, defaults to `False`): unlike `TrainingArguments`, keep raw columns such as
            `audio`, which the `AudioDataCollator` turns into model inputs.
        eval_length_bucketing (`bool`, defaults to `True`): `evaluate()` and `predict()` run the clips longest
            first, so each batch holds clips of similar length (little padding); predictions and metrics come back
            in dataset order. Clip lengths come from a `length`/`duration` column or, without decoding, from the
            audio files' headers (see `hf_ser.training.sampler.clip_durations`). Single-process runs only; `False` keeps
            dataset order.
        train_length_grouping (`bool`, *optional*): training batches hold clips of similar length (MSP-Podcast's
            2.75-11 s clips pad about 30 % of the frames in random batches). Each epoch keeps its random draw (the
            same clips as without grouping, for every `sampling`; class-balanced batches keep their class make-up),
            reproducible from the seed and on resume; under several processes each receives whole grouped batches.
            Lengths come from the same place as for `eval_length_bucketing`. `None` (default) turns it on where it
            changes nothing but speed: a model whose output for a clip does not depend on its batch's padding
            (`hf_ser.inference.predict.pads_exactly`) trained with a per-clip loss (`FocalLossTrainer`); `CCCLossTrainer`
            leaves it off unless asked, because CCC is a statistic of the whole batch, so which clips share a batch
            changes the loss.
    """

    sampling: str = field(default="none", metadata={"help": f"Training sampling, one of {SAMPLING_CHOICES}."})
    class_label_column: str = field(
        default="label", metadata={"help": "Column of primary-emotion class ids."}
    )
    sampling_ignore_index: int | None = field(default=None, metadata={"help": "Class id the samplers skip."})
    aux_loss_weight: float | None = field(
        default=None,
        metadata={"help": "Weight of the auxiliary (gender) loss; default: the model config's (1.0)."},
    )
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Keep raw columns for the collator."}
    )
    eval_length_bucketing: bool = field(
        default=True, metadata={"help": "Evaluate and predict in batches of clips of similar length."}
    )
    train_length_grouping: bool | None = field(
        default=None,
        metadata={
            "help": "Group training batches by clip length (same clips per epoch, shuffled batch order). "
            "Default: on where it changes only speed (padding-exact model, per-clip loss)."
        },
    )

    def __post_init__(self):
        if self.sampling not in SAMPLING_CHOICES:
            raise ValueError(f"sampling={self.sampling!r}; expected one of {SAMPLING_CHOICES}.")
        if self.aux_loss_weight is not None and self.aux_loss_weight < 0:
            raise ValueError(f"aux_loss_weight must be >= 0, got {self.aux_loss_weight}.")
        super().__post_init__()


class SamplerEpochCallback(TrainerCallback):
    """Tells the class-balanced samplers which epoch starts, from `state.epoch`.

    `Trainer` calls `set_epoch` itself, but on resuming a multi-process run the sampler sits under accelerate's
    skip and shard wrappers, where that call does not reach it; the resumed epoch would then repeat epoch 0's draw.
    """

    def on_epoch_begin(self, args, state, control, train_dataloader=None, **kwargs):
        sampler = _find_epoch_sampler(train_dataloader)
        if sampler is not None:
            # state.epoch is the number of epochs done (fractional when resuming mid-epoch).
            sampler.set_epoch(int(math.floor(state.epoch + 1e-6)))


def _find_epoch_sampler(loader) -> _EpochSeededSampler | None:
    return _find_sampler(loader, _EpochSeededSampler)


def _find_sampler(loader, sampler_class: type):
    # DataLoaderShard -> [SkipBatchSampler] -> [BatchSamplerShard] -> BatchSampler -> sampler
    frontier = [loader]
    for _ in range(6):
        found = [obj for obj in frontier if isinstance(obj, sampler_class)]
        if found:
            return found[0]
        frontier = [
            child
            for obj in frontier
            for child in (getattr(obj, "batch_sampler", None), getattr(obj, "sampler", None))
            if child is not None
        ]
    return None


def _in_dataset_order(value, inverse: np.ndarray, count: int):
    """Rows of `value` (arrays, possibly nested in tuples/lists/dicts) from run order back to dataset order."""
    if isinstance(value, np.ndarray) and value.ndim > 0 and value.shape[0] == count:
        return value[inverse]
    if isinstance(value, (tuple, list)):
        return type(value)(_in_dataset_order(v, inverse, count) for v in value)
    if isinstance(value, dict):
        return {k: _in_dataset_order(v, inverse, count) for k, v in value.items()}
    return value


def _output(outputs, key: str):
    if isinstance(outputs, dict):
        return outputs.get(key)
    return getattr(outputs, key, None)


# The batch key of the auxiliary (gender) labels: what the collators write, the models' `forward` reads and the
# trainers pass on. The former key is still read.
AUX_LABEL_KEY = "gender"
LEGACY_AUX_LABEL_KEY = "aux_labels"


def _owns_loss(model) -> bool:
    """Whether `model` computes its loss from its config (hf_ser's models) instead of leaving it to the trainer."""
    return isinstance(model, SERPreTrainedModel)


class _SERTrainer(Trainer):
    """Shared machinery: loss settings written into the model's config, balanced sampling, deterministic eval crops."""

    # compute_loss returns a per-micro-batch mean: Trainer divides it by the accumulation steps, which makes
    # accumulation over equal-sized micro-batches exactly a large-batch mean loss.
    loss_is_scaled_for_ga = False
    # Used when `compute_metrics` is left to the trainer: selection on the task metric, not the loss.
    default_selection_metric: str = ""
    # Loss fields written into the config of a model from outside hf_ser when it lacks them, so that its saved
    # config.json records the loss the trainer computes for it.
    loss_defaults: dict[str, Any] = {}

    def __init__(self, *args, **kwargs):
        compute_metrics_given = kwargs.get("compute_metrics") is not None
        super().__init__(*args, **kwargs)
        # Never hand num_items_in_batch to the model: the loss is a per-micro-batch mean (CCC: a batch statistic).
        self.model_accepts_loss_kwargs = False
        self.add_callback(SamplerEpochCallback())
        self._loss_arguments_ready = True
        if self.model is not None:
            self.configure_loss(self.model)
        if not any(isinstance(callback, ModelCardCallback) for callback in self.callback_handler.callbacks):
            # The card is part of the model's life: training set-up and evaluation results reach
            # model.model_card_data, which save_pretrained writes as README.md.
            self.add_callback(ModelCardCallback(model_card_data(self.model)))
        if not compute_metrics_given and self.eval_dataset is not None:
            self.compute_metrics = self.default_compute_metrics()
            if self.args.metric_for_best_model in (None, "loss", "eval_loss"):
                # The issue (and both challenge tasks) select on the dev-set task metric, not the loss.
                logger.info("Selecting checkpoints on %s instead of the loss.", self.default_selection_metric)
                self.args.metric_for_best_model = self.default_selection_metric
                self.args.greater_is_better = True

    def train(self, resume_from_checkpoint=None, *args, **kwargs):
        """`Trainer.train`, after checking the checkpoint to resume from: a half-written or corrupt checkpoint is
        reported, and with `resume_from_checkpoint=True` the newest complete one is used (see
        `hf_ser.training.checkpoints`)."""
        resume = resolve_resume_checkpoint(self.args.output_dir, resume_from_checkpoint)
        return super().train(resume, *args, **kwargs)

    def default_compute_metrics(self) -> Callable[[EvalPrediction], dict[str, float]]:
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------------ loss
    def call_model_init(self, trial=None):
        model = super().call_model_init(trial)
        if getattr(self, "_loss_arguments_ready", False):
            self.configure_loss(model)  # a model built anew (hyperparameter search) trains the same loss
        return model

    def loss_arguments(self, config, owns_loss: bool) -> dict[str, Any]:
        """The config fields this trainer's arguments set (its subclasses' loss arguments)."""
        return {}

    def loss_config(self, model=None):
        """The config that describes the trained loss: `model.config` (default: the trainer's model), or, for a
        module without a config, a namespace the trainer keeps."""
        model = self.model if model is None else model
        config = getattr(model, "config", None)
        if config is None:
            config = self.__dict__.setdefault("_loss_namespace", SimpleNamespace())
        return config

    def configure_loss(self, model) -> None:
        """Write the loss arguments given to this trainer (and `args.aux_loss_weight`) into `model.config`, where
        the model reads them. A given value replaces the config's (with a warning when they differ); arguments left
        at `None` keep the config's values. The settings are checked here, before any training step."""
        config = self.loss_config(model)
        owns_loss = _owns_loss(model)
        settings = (
            {} if owns_loss else {k: v for k, v in self.loss_defaults.items() if not hasattr(config, k)}
        )
        given = self.loss_arguments(config, owns_loss)
        weight = getattr(self.args, "aux_loss_weight", None)
        if weight is not None:
            if owns_loss and not hasattr(config, "gender_loss_weight"):
                logger.info("%s has no auxiliary head: aux_loss_weight is not used.", type(model).__name__)
            else:
                given["gender_loss_weight"] = float(weight)
        for name, value in given.items():
            if getattr(config, name, None) not in (None, value):
                logger.warning(
                    "%s sets config.%s=%r (the config had %r): the trainer's value is trained and saved.",
                    type(self).__name__,
                    name,
                    value,
                    getattr(config, name),
                )
        settings.update(given)
        for name, value in settings.items():
            setattr(config, name, value)
        loss_from_config(config)  # a bad setting (e.g. class_weights for another number of labels) fails now

    @property
    def loss_fct(self):
        """The task loss the model's config describes (`hf_ser.models.losses.loss_from_config`)."""
        return loss_from_config(self.loss_config())

    def task_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The configured task loss, for models from outside hf_ser (hf_ser's models compute it themselves)."""
        raise NotImplementedError

    def aux_loss(self, aux_logits: torch.Tensor, aux_labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the auxiliary head (paper 001: gender); labels of -100 are ignored."""
        return auxiliary_cross_entropy(aux_logits, aux_labels)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if inputs.get("labels") is None:
            raise ValueError(
                f"{type(self).__name__} needs `labels` in every batch (check the collator's label_columns)."
            )
        if _owns_loss(self.model):
            # hf_ser's models compute the loss their config describes, gender term included (from `gender`).
            outputs = model(**inputs)
            loss, logits = _output(outputs, "loss"), _output(outputs, "logits")
        else:
            inputs = dict(inputs)
            labels = inputs.pop("labels")
            aux_labels = inputs.pop(AUX_LABEL_KEY, None)
            legacy = inputs.pop(LEGACY_AUX_LABEL_KEY, None)
            aux_labels = legacy if aux_labels is None else aux_labels
            outputs = model(**inputs)
            logits = _output(outputs, "logits")
            if logits is None:
                logits = outputs[0]
            loss = self.task_loss(logits, labels)
            aux_logits = _output(outputs, "aux_logits")
            weight = float(getattr(self.loss_config(), "gender_loss_weight", 1.0))
            if aux_logits is not None and aux_labels is not None and weight > 0:
                loss = loss + weight * self.aux_loss(aux_logits, aux_labels)
        # Only the logits go to evaluation, so compute_metrics always sees an array, not a tuple with embeddings.
        return (loss, {"logits": logits}) if return_outputs else loss

    # -------------------------------------------------------------------------------------------- sampling
    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        sampling = getattr(self.args, "sampling", "none")
        lengths = self._train_lengths(dataset)
        if sampling == "none" and lengths is None:
            return super()._get_train_sampler(train_dataset)
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        batch_size = self.args.per_device_train_batch_size
        if sampling == "none":
            return RandomEpochSampler(len(dataset), seed=seed, lengths=lengths, batch_size=batch_size)
        column = self.args.class_label_column
        if getattr(dataset, "column_names", None) is not None and column not in dataset.column_names:
            dataset = self.train_dataset  # the column may have been removed as unused by the model
        labels = labels_from_dataset(dataset, column)
        ignore = self.args.sampling_ignore_index
        if sampling == "undersample":
            return ClassBalancedUndersampler(
                labels, seed=seed, ignore_index=ignore, lengths=lengths, batch_size=batch_size
            )
        return ClassBalancedBatchSampler(
            labels, batch_size=batch_size, seed=seed, ignore_index=ignore, lengths=lengths
        )

    # Whether grouping training batches by length changes only speed with this trainer's loss (see
    # `SERTrainingArguments.train_length_grouping`).
    length_grouping_by_default: bool = True

    def _train_lengths(self, dataset) -> list[float | None] | None:
        """Clip lengths for grouping training batches, or None when batches are not grouped."""
        wanted = getattr(self.args, "train_length_grouping", False)
        if wanted is None:
            wanted = self.length_grouping_by_default and pads_exactly(self.model)
        if not wanted or dataset is None or self.args.train_sampling_strategy != "random":
            return None  # off, or the user chose one of transformers' own training samplers
        lengths = self._clip_lengths(dataset)
        if lengths is None:
            logger.info("Training batches are not grouped by length: the clips' lengths are not known.")
        return lengths

    # -------------------------------------------------------------------------------------------- evaluation
    @contextlib.contextmanager
    def _deterministic_collator(self):
        collator = self.data_collator
        if hasattr(collator, "for_eval"):
            self.data_collator = collator.for_eval()
        try:
            yield
        finally:
            self.data_collator = collator

    def get_eval_dataloader(self, eval_dataset=None):
        with self._deterministic_collator():
            return super().get_eval_dataloader(eval_dataset)

    def _get_eval_sampler(self, eval_dataset):
        args = self.args
        if (
            eval_dataset is not None
            and getattr(args, "eval_length_bucketing", True)
            and args.world_size <= 1
            and args.eval_do_concat_batches
            and args.train_sampling_strategy != "group_by_length"
        ):
            lengths = self._clip_lengths(eval_dataset)
            if lengths is not None:
                return LengthSortedSampler(lengths)
            logger.info(
                "Evaluating in dataset order: the clips' lengths are not known without decoding them."
            )
        return super()._get_eval_sampler(eval_dataset)

    def _clip_lengths(self, dataset):
        # Evaluation runs every epoch on the same set: read the headers once.
        key = (getattr(dataset, "_fingerprint", None) or id(dataset), len(dataset))
        cache = self.__dict__.setdefault("_clip_length_cache", {})
        if key not in cache:
            audio_column = getattr(self.data_collator, "audio_column", "audio")
            cache[key] = clip_durations(dataset, audio_column, (self.args.length_column_name, "duration"))
        return cache[key]

    def evaluation_loop(
        self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"
    ):
        """`Trainer.evaluation_loop`; after a length-sorted run, metrics see (and `predict()` returns) the
        predictions in dataset order."""
        sampler = _find_sampler(dataloader, LengthSortedSampler)
        if sampler is None:
            return super().evaluation_loop(
                dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix
            )
        count = len(sampler.order)
        inverse = np.argsort(np.asarray(sampler.order))
        compute_metrics = self.compute_metrics
        if compute_metrics is not None and not self.args.batch_eval_metrics:

            def compute_in_dataset_order(prediction: EvalPrediction):
                return compute_metrics(
                    EvalPrediction(
                        predictions=_in_dataset_order(prediction.predictions, inverse, count),
                        label_ids=_in_dataset_order(prediction.label_ids, inverse, count),
                        inputs=_in_dataset_order(prediction.inputs, inverse, count),
                        losses=_in_dataset_order(prediction.losses, inverse, count),
                    )
                )

            self.compute_metrics = compute_in_dataset_order
        try:
            output = super().evaluation_loop(
                dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix
            )
        finally:
            self.compute_metrics = compute_metrics
        return output._replace(
            predictions=_in_dataset_order(output.predictions, inverse, count),
            label_ids=_in_dataset_order(output.label_ids, inverse, count),
        )

    def get_test_dataloader(self, test_dataset):
        with self._deterministic_collator():
            return super().get_test_dataloader(test_dataset)


class FocalLossTrainer(_SERTrainer):
    """`Trainer` for categorical SER with the multi-class focal loss (paper 000; Lin et al., ICCV 2017) or weighted
    cross-entropy (paper 002's baseline).

    The loss belongs to the model's config (`loss`, `focal_gamma`, `class_weights`; see `WavLMMASPConfig`): the
    trainer writes the arguments below into `model.config`, the model computes its loss from the config, and the
    saved `config.json` describes the loss that was trained. A value given here takes precedence over the config's
    and replaces it (with a warning when they differ); `None` keeps the config's.

    Args:
        focal_gamma (`float`, *optional*): focusing parameter, written to `config.focal_gamma` (a config with
            `loss="ce"` becomes `loss="focal"` for gamma > 0). `None` keeps the config's value (`WavLMMASPConfig`:
            2.0, Lin et al.'s default; paper 000 gives none). `0.0` gives (weighted) cross-entropy, the challenge
            baseline's loss (paper 002).
        class_weights (`Sequence[float]`, `"inverse_frequency"` or `None`): per-class alpha weights, written to
            `config.class_weights`; `"inverse_frequency"` computes N / (C * n_c) from the training set's
            `args.class_label_column` (as `hf_ser.models.losses.set_inverse_frequency_class_weights` does). `None` keeps
            the config's.
        *args, **kwargs: as for `transformers.Trainer`. Without `compute_metrics`, evaluation reports the macro-F1,
            micro-F1, UAR and WAR of `hf_ser.evaluation.metrics` and checkpoints are selected on `f1_macro`.

    A model from outside hf_ser (e.g. `Wav2Vec2ForSequenceClassification`) gets the same fields in its config
    (`loss="focal"`, `focal_gamma=2.0`, `class_weights=None` unless given), and the trainer computes that loss from
    its logits.

    Gradient accumulation over equal-sized micro-batches reproduces the large batch's loss exactly without
    `class_weights`; with them, each micro-batch is normalised by its own sum of target weights (as
    `torch.nn.functional.cross_entropy` does per call), which differs slightly from normalising the whole batch.

    Example:
        >>> trainer = FocalLossTrainer(model=model, args=SERTrainingArguments("out"), train_dataset=train,
        ...                            eval_dataset=dev, data_collator=AudioDataCollator(build_feature_extractor()))
        >>> trainer.train()  # doctest: +SKIP
    """

    default_selection_metric = "f1_macro"
    loss_defaults = {"loss": "focal", "focal_gamma": 2.0, "class_weights": None}

    def __init__(
        self,
        *args,
        focal_gamma: float | None = None,
        class_weights: Sequence[float] | str | None = None,
        **kwargs,
    ):
        if focal_gamma is not None and focal_gamma < 0:
            raise ValueError(f"focal_gamma must be >= 0, got {focal_gamma}.")
        if isinstance(class_weights, str) and class_weights != "inverse_frequency":
            raise ValueError(
                f"class_weights={class_weights!r}; use 'inverse_frequency' or a list of weights."
            )
        self._focal_gamma, self._class_weights = focal_gamma, class_weights
        super().__init__(*args, **kwargs)

    def loss_arguments(self, config, owns_loss: bool) -> dict[str, Any]:
        if getattr(config, "problem_type", None) == "regression":
            raise ValueError(
                "FocalLossTrainer trains classifiers; this model's config has problem_type='regression': use "
                "CCCLossTrainer."
            )
        given: dict[str, Any] = {}
        kind = getattr(config, "loss", None)
        if hasattr(config, "loss") and kind not in CLASSIFICATION_LOSSES:
            given["loss"] = kind = "focal"
        if self._focal_gamma is not None:
            gamma = float(self._focal_gamma)
            if not (kind == "ce" and gamma == 0.0):  # "ce" is gamma 0 already
                if kind is not None:
                    given["loss"] = "focal"
                given["focal_gamma"] = gamma
        weights = self._class_weights
        if isinstance(weights, str):
            if self.train_dataset is None:
                raise ValueError("class_weights='inverse_frequency' needs a train_dataset.")
            labels = labels_from_dataset(self.train_dataset, self.args.class_label_column)
            scratch = SimpleNamespace(num_labels=getattr(config, "num_labels", None))
            weights = set_inverse_frequency_class_weights(scratch, labels)
        if weights is not None:
            given["class_weights"] = [float(w) for w in weights]
        return given

    def default_compute_metrics(self):
        return classification_metrics()

    def task_loss(self, logits, labels):
        return self.loss_fct(logits, labels.to(logits.device))


class CCCLossTrainer(_SERTrainer):
    """`Trainer` for attribute regression with 1 - CCC (papers 001 and 002, Eq. 1 of paper 002).

    The loss belongs to the model's config (`ccc_reduction`, `ccc_weights`, and for `MultimodalSERForRegression`
    `gender_loss_weight`; `MultiViewSERForRegression` also reads its `loss_target`): the trainer writes the
    arguments below and `args.aux_loss_weight` into `model.config`, the model computes its loss from the config, and
    the saved `config.json` describes the loss that was trained. A value given here takes precedence over the
    config's and replaces it (with a warning when they differ); `None` keeps the config's. A `WavLMMASPConfig` with
    `loss="mse"` is set to `loss="ccc"`.

    Args:
        ccc_reduction (`str`, *optional*): combine the per-attribute losses by `"sum"` (paper 001; the configs'
            default) or `"mean"`, written to `config.ccc_reduction`. (The challenge baseline trains one model per
            attribute, where both are the same.)
        attribute_weights (`Sequence[float]`, *optional*): per-attribute weights, written to `config.ccc_weights`.
        *args, **kwargs: as for `transformers.Trainer`. Without `compute_metrics`, evaluation reports CCC per
            attribute and `ccc_mean`, which selects the checkpoints.

    Paper 001's gender term is computed by the model from the batch's `gender` labels (the key `MultimodalDataCollator`
    writes); a model from outside hf_ser that returns `aux_logits` gets it from the trainer.

    CCC is a batch statistic, so gradient accumulation averages per-micro-batch CCC losses; it is not the CCC of
    the accumulated batch. Use micro-batches that are not tiny. For the same reason training batches are grouped by
    length only when `train_length_grouping=True` is asked for. A batch of one clip has no CCC and contributes a loss
    of 0 (see `CCCLoss`).
    """

    length_grouping_by_default = False

    default_selection_metric = "ccc_mean"
    loss_defaults = {"loss": "ccc", "ccc_reduction": "sum", "ccc_weights": None}

    def __init__(
        self,
        *args,
        ccc_reduction: str | None = None,
        attribute_weights: Sequence[float] | None = None,
        **kwargs,
    ):
        if ccc_reduction is not None and ccc_reduction not in CCC_REDUCTIONS:
            raise ValueError(f"ccc_reduction={ccc_reduction!r}; expected one of {CCC_REDUCTIONS}.")
        self._ccc_reduction, self._attribute_weights = ccc_reduction, attribute_weights
        super().__init__(*args, **kwargs)

    def loss_arguments(self, config, owns_loss: bool) -> dict[str, Any]:
        if owns_loss and getattr(config, "problem_type", None) != "regression":
            raise ValueError(
                f"CCCLossTrainer trains attribute regressors; this model's config has "
                f"problem_type={getattr(config, 'problem_type', None)!r}: use FocalLossTrainer."
            )
        given: dict[str, Any] = {}
        if hasattr(config, "loss"):
            given["loss"] = "ccc"
        if self._ccc_reduction is not None:
            given["ccc_reduction"] = self._ccc_reduction
        if self._attribute_weights is not None:
            given["ccc_weights"] = [float(w) for w in self._attribute_weights]
        return given

    def default_compute_metrics(self):
        return attribute_metrics(attribute_names=_attribute_names(self.model))

    def task_loss(self, logits, labels):
        labels = labels.to(logits.device).float()
        return self.loss_fct(logits.float().reshape(labels.shape), labels)


# ------------------------------------------------------------------------------------------------ metrics
def _logits(prediction: EvalPrediction) -> np.ndarray:
    predictions = prediction.predictions
    if isinstance(predictions, (tuple, list)):
        predictions = predictions[0]  # models called without labels also return embeddings
    return np.asarray(predictions)


def _scalars(result: dict) -> dict[str, float]:
    return {key: float(value) for key, value in result.items() if np.ndim(value) == 0}


def classification_metrics() -> Callable[[EvalPrediction], dict[str, float]]:
    """`compute_metrics` for categorical SER: macro-F1 (the challenge's ranking metric), micro-F1, UAR and WAR on
    the whole evaluation set, from `hf_ser.evaluation.metrics.load_metric("f1")`."""
    from ..evaluation.metrics import load_metric

    metric = load_metric("f1", keep_in_memory=True)

    def compute(prediction: EvalPrediction) -> dict[str, float]:
        predicted = _logits(prediction).argmax(axis=-1)
        references = np.asarray(prediction.label_ids).reshape(-1)
        return _scalars(metric.compute(predictions=predicted.tolist(), references=references.tolist()))

    return compute


def _attribute_names(model) -> list[str] | None:
    """The model's output names (`config.id2label`, in output order) when they are emotional attributes, e.g.
    `["valence", "dominance"]`; None otherwise (the CCC metric then assumes arousal, valence, dominance)."""
    id2label = getattr(getattr(model, "config", None), "id2label", None) or {}
    names = (
        [id2label[i] for i in range(len(id2label))]
        if all(i in id2label for i in range(len(id2label)))
        else []
    )
    from ..models.labels import (
        ATTRIBUTE_LABELS,  # local: keeps this change off the import block other work edits
    )

    known = set(ATTRIBUTE_LABELS)
    return names if names and all(str(name).lower() in known for name in names) else None


def _ccc(metric, predicted: np.ndarray, references: np.ndarray, attribute_names) -> dict[str, float]:
    names = list(attribute_names) if attribute_names is not None and references.ndim == 2 else None
    return _scalars(
        metric.compute(predictions=predicted.tolist(), references=references.tolist(), attribute_names=names)
    )


def attribute_metrics(
    attribute_names: Sequence[str] | None = None,
) -> Callable[[EvalPrediction], dict[str, float]]:
    """`compute_metrics` for attributes: CCC of arousal, valence, dominance and their mean (the challenge's ranking
    metric, paper 002), from `hf_ser.evaluation.metrics.load_metric("ccc")`. A single-attribute model (the baseline trains one
    per attribute) reports `ccc` and, for model selection, the same value as `ccc_mean`.

    `attribute_names` names the model's output columns in order (e.g. `["valence", "dominance"]`); by default three
    columns are arousal, valence, dominance. `CCCLossTrainer` passes the model's `id2label` names."""
    from ..evaluation.metrics import load_metric

    metric = load_metric("ccc", keep_in_memory=True)

    def compute(prediction: EvalPrediction) -> dict[str, float]:
        references = np.asarray(prediction.label_ids, dtype=np.float64)
        predicted = _logits(prediction).astype(np.float64).reshape(references.shape)
        if references.ndim == 2 and references.shape[1] == 1:
            references, predicted = references[:, 0], predicted[:, 0]
        result = _ccc(metric, predicted, references, attribute_names)
        if "ccc_mean" not in result and "ccc" in result:
            result["ccc_mean"] = result[
                "ccc"
            ]  # one attribute (the baseline's setting): select on it all the same
        return result

    return compute


def balanced_attribute_metrics(
    primary_labels: Sequence[int],
    samples_per_class: int | None = None,
    num_trials: int = 10,
    seed: int = 0,
    ignore_index: int | None = None,
    attribute_names: Sequence[str] | None = None,
) -> Callable[[EvalPrediction], dict[str, float]]:
    """`compute_metrics` with paper 001's balanced-subset CCC (Sec. 3, "Validation Selection") next to the full
    development set's CCC: in each of `num_trials` trials, `samples_per_class` clips are drawn from every primary
    emotion without replacement, CCC is computed on them, and the trials are averaged (keys `balanced_ccc_*`).

    It mimics the class-balanced test set. Paper 001 states neither n nor k: `samples_per_class` defaults to the
    smallest class count of the development set and `num_trials` to 10. The same `seed` gives the same subsets at
    every evaluation, so checkpoints are compared on equal footing.

    Args:
        primary_labels (`Sequence[int]`): the primary emotion of every evaluation clip, in dataset order (e.g.
            `dev["label"]` of MSP-Podcast's `"all"` configuration).
        attribute_names (`Sequence[str]`, *optional*): the output columns' names, as for `attribute_metrics`.
    """
    from ..evaluation.metrics import load_metric

    metric = load_metric("ccc", keep_in_memory=True)
    labels = np.asarray(list(primary_labels))
    keep = labels != ignore_index if ignore_index is not None else np.ones(labels.shape, dtype=bool)
    class_indices = [np.flatnonzero(keep & (labels == c)) for c in np.unique(labels[keep])]
    smallest = min(len(indices) for indices in class_indices)
    k = smallest if samples_per_class is None else samples_per_class
    if not 2 <= k <= smallest:
        raise ValueError(f"samples_per_class must be in [2, {smallest}] (smallest class count), got {k}.")
    rng = np.random.default_rng(seed)
    subsets = [
        np.concatenate([rng.choice(indices, size=k, replace=False) for indices in class_indices])
        for _ in range(num_trials)
    ]

    def compute(prediction: EvalPrediction) -> dict[str, float]:
        references = np.asarray(prediction.label_ids, dtype=np.float64)
        predicted = _logits(prediction).astype(np.float64).reshape(references.shape)
        if references.shape[0] != labels.shape[0]:
            raise ValueError(
                f"{references.shape[0]} evaluation predictions for {labels.shape[0]} primary labels: pass the "
                "primary emotions of the evaluation set, in its order."
            )
        result = _ccc(metric, predicted, references, attribute_names)
        trials = [_ccc(metric, predicted[s], references[s], attribute_names) for s in subsets]
        for key in trials[0]:
            result[f"balanced_{key}"] = float(np.mean([trial[key] for trial in trials]))
        return result

    return compute


__all__ = [
    "SERTrainingArguments",
    "FocalLossTrainer",
    "CCCLossTrainer",
    "classification_metrics",
    "attribute_metrics",
    "balanced_attribute_metrics",
]
