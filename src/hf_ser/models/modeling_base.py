"""`SERPreTrainedModel`: the transformers model contract shared by hf_ser's three models.

One place for what every hf_ser model must do the way transformers' own models do it:

- **Frozen means frozen.** `freeze_modules` freezes parameters *and* tells transformers' convolutional waveform
  encoders that they are frozen (`_requires_grad = False`). Without that flag such an encoder marks the waveform
  as requiring grad in training mode, so autograd records the whole encoder and a backward pass runs through every
  layer down to the input even when all of them are frozen.
- **Activation checkpointing covers the trainable layers only**, and is non-reentrant: reentrant checkpointing
  needs layer inputs that require grad, which is exactly the waste frozen layers avoid (the first trainable layer's
  input does not require grad).
- **Safetensors only.** `from_pretrained` refuses pickle-only checkpoints unless `use_safetensors=False` is passed,
  and re-applies the configured freezing (loading materialises fresh parameters).
- **Missing encoder weights are initialised as the encoder's own class would.** transformers treats models defined
  outside it as "custom code" and then skips modules without direct parameters, such as WavLM's positional
  convolution and feature projection, whose special initialisation lives on the parent module. hf_ser's
  `_init_weights` only uses transformers' guarded `initialization` helpers, so the shortcut is not needed.
- **Output flags** (`output_hidden_states`, `output_attentions`) default to the config's, as in transformers.
- **The model card lives with the model.** `save_pretrained` writes `README.md` beside the weights and
  `from_pretrained` of a local folder reads it back into `model.model_card_data`, through hooks that the hf_ser
  package installs (`set_model_card_hooks`, called by `hf_ser.publishing.model_card.install_model_card_hooks` at
  `import hf_ser`). This file cannot import the card code (see below), so a copy loaded from the Hub with
  `trust_remote_code` and no hf_ser saves without a card, as any transformers model does.

It also owns the plumbing the models share: recording per-layer states with hooks ([`LayerRecorder`]), the mask of
an encoder's valid output frames ([`encoder_frame_mask`], Whisper included), and loading pretrained encoder weights
with the missing-weights check ([`pretrained_encoder_state`], [`load_encoder_weights`]).

This file travels to the Hub with the models (``trust_remote_code``): it imports only torch and transformers.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel
from transformers.modeling_layers import GradientCheckpointingLayer

logger = logging.getLogger(__name__)


# Config fields that `from_pretrained` keyword arguments may set besides a model config's own fields.
LABEL_FIELDS = frozenset({"num_labels", "id2label", "label2id", "problem_type"})

# `from_pretrained` keyword arguments that locate a checkpoint's files.
_HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder", "proxies")


def encoder_checkpoint_config(
    name_or_path, kwargs: dict, encoder_types: Iterable[str]
) -> PreTrainedConfig | None:
    """The config of `name_or_path` when it is a plain encoder checkpoint of one of `encoder_types` (e.g. a
    `microsoft/wavlm-large` folder), None when it is anything else (an hf_ser model, a config-less folder)."""
    hub_kwargs = {key: kwargs[key] for key in _HUB_KWARGS if key in kwargs}
    try:
        config_dict, _ = PreTrainedConfig.get_config_dict(name_or_path, **hub_kwargs)
    except (OSError, ValueError):
        return None  # let from_pretrained report the problem in its own words
    model_type = config_dict.get("model_type")
    if model_type not in tuple(encoder_types):
        return None
    return AutoConfig.for_model(**config_dict)


def pop_config_kwargs(kwargs: dict, config_class: type[PreTrainedConfig]) -> dict:
    """Remove from `kwargs` (a `from_pretrained` call's) the keyword arguments that name fields of `config_class` or
    its labels, and return them: they build the config around a plain encoder checkpoint."""
    names = set(config_class.__annotations__) | LABEL_FIELDS
    return {key: kwargs.pop(key) for key in list(kwargs) if key in names}


def pretrained_encoder_state(name_or_path: str, **kwargs) -> dict[str, torch.Tensor]:
    """The weights of a pretrained encoder (e.g. `"microsoft/wavlm-large"`), read as safetensors only; of an
    encoder-decoder model (Whisper) only its encoder's. `kwargs` go to `AutoModel.from_pretrained` (revision,
    cache_dir, `add_pooling_layer=False`, ...)."""
    model = AutoModel.from_pretrained(name_or_path, use_safetensors=True, **kwargs)
    if getattr(model.config, "is_encoder_decoder", False):
        model = model.get_encoder()
    return model.state_dict()


def load_encoder_weights(target: nn.Module, state: dict[str, torch.Tensor], name: str) -> None:
    """Load a pretrained encoder's `state` into `target`, an encoder the model built from the same config; a weight
    that `target` has and `state` lacks is an error (keys `state` has beyond `target`'s, such as a task head's, are
    ignored). `name` names the checkpoint in the error."""
    missing, _ = target.load_state_dict(state, strict=False)
    if missing:
        raise ValueError(f"{name} lacks encoder weights: {missing[:5]} ...")


def encoder_frame_mask(
    encoder: nn.Module,
    num_frames: int,
    attention_mask: torch.Tensor | None,
    device: torch.device | None = None,
) -> torch.Tensor | None:
    """(batch, num_frames) bool mask of a speech encoder's valid output frames, from the encoder's own output-length
    formula; None without an `attention_mask`.

    The wav2vec2 family (WavLM, wav2vec2, HuBERT, data2vec-audio) takes a sample-level mask and has
    `_get_feature_vector_attention_mask`; Whisper's encoder takes a mel-frame-level mask, whose valid lengths its
    `_get_feat_extract_output_lengths` maps to output frames. `device`: where the mask goes (defaults to the
    attention mask's)."""
    if attention_mask is None:
        return None
    if hasattr(encoder, "_get_feature_vector_attention_mask"):
        mask = encoder._get_feature_vector_attention_mask(num_frames, attention_mask).bool()
    else:
        lengths = encoder._get_feat_extract_output_lengths(attention_mask.sum(-1))
        mask = torch.arange(num_frames, device=lengths.device)[None, :] < lengths[:, None]
    return mask if device is None else mask.to(device)


class LayerRecorder:
    """Collects, during one forward pass, what each hooked layer returns (or, hooked with `inputs=True`, the hidden
    states it receives), keyed by layer index: `start()`, run the model, `stop()` returns `{index: tensor}`.

    Hooks (unlike `output_hidden_states`) say which layers ran when LayerDrop skips some in training, and read the
    layers directly where transformers' `output_hidden_states` is not reliable (WavLM with an attention mask drops
    one state in transformers 5). The hooks are `_RecordHook` objects pointing at this recorder, not closures over
    the model, so `copy.deepcopy` of the model copies hooks and recorder together and the copy records into its own
    recorder."""

    def __init__(self):
        self.outputs: dict[int, torch.Tensor] | None = None

    def attach(self, layers: Iterable[nn.Module], inputs: bool = False) -> None:
        """Hook every layer of `layers` (indexed in order): record its output, or its input with `inputs=True`."""
        for index, layer in enumerate(layers):
            hook = _RecordHook(self, index, inputs)
            if inputs:
                layer.register_forward_pre_hook(hook, with_kwargs=True)
            else:
                layer.register_forward_hook(hook)

    def start(self) -> None:
        self.outputs = {}

    def stop(self) -> dict[int, torch.Tensor]:
        outputs, self.outputs = self.outputs or {}, None
        return outputs


class _RecordHook:
    """A forward hook `(module, args, output)`, or with `inputs` a pre-hook with kwargs `(module, args, kwargs)`,
    recording into its `LayerRecorder` while it records."""

    def __init__(self, recorder: LayerRecorder, index: int, inputs: bool = False):
        self.recorder = recorder
        self.index = index
        self.inputs = inputs

    def __call__(self, module, args, output_or_kwargs):
        if self.recorder.outputs is None:
            return
        if self.inputs:  # the layer's input hidden states, given by position or by name
            state = args[0] if args else output_or_kwargs["hidden_states"]
        else:  # the layer's output; transformers' layers may return a tuple led by the hidden states
            state = output_or_kwargs[0] if isinstance(output_or_kwargs, tuple) else output_or_kwargs
        self.recorder.outputs[self.index] = state


def freeze_modules(modules: Iterable[nn.Module | nn.Parameter | None], frozen: bool = True) -> None:
    """Set `requires_grad` of every parameter of `modules` to `not frozen`, and keep transformers' waveform
    encoders' `_requires_grad` flag in step, so that a frozen (or trainable) convolutional front end never makes
    the waveform require grad."""
    for item in modules:
        if item is None:
            continue
        if isinstance(item, nn.Parameter):
            item.requires_grad = not frozen
            continue
        item.requires_grad_(not frozen)
        for module in item.modules():
            if hasattr(module, "_requires_grad"):
                # transformers sets `input.requires_grad = True` when this flag is on, only so that reentrant
                # checkpointing of the first convolution sees an input that requires grad. hf_ser checkpoints
                # non-reentrantly, so the waveform never needs it, trainable front end or not.
                module._requires_grad = False


def has_trainable_parameters(module: nn.Module) -> bool:
    return any(parameter.requires_grad for parameter in module.parameters())


# (on_save, on_load): `on_save(model, folder)` writes the model card after `save_pretrained`; `on_load(model,
# folder)` reads it after `from_pretrained` of a local folder. Installed by the hf_ser package; None here.
_model_card_hooks: tuple[Callable | None, Callable | None] = (None, None)


def set_model_card_hooks(on_save: Callable | None = None, on_load: Callable | None = None) -> None:
    """Install how `SERPreTrainedModel.save_pretrained` writes and `from_pretrained` reads the model card
    (`README.md`). hf_ser installs its own at import (`hf_ser.publishing.model_card.install_model_card_hooks`); `None`
    removes a hook. A hook must not raise: a card must never break saving or loading a model."""
    global _model_card_hooks
    _model_card_hooks = (on_save, on_load)


class SERPreTrainedModel(PreTrainedModel):
    """Base class of hf_ser's models: safetensors-only loading, freezing that stops autograd at the frozen parts,
    activation checkpointing of the trainable layers only, and the encoder's own initialisation of missing
    weights. Subclasses implement `apply_freezing()`."""

    main_input_name = "input_values"
    supports_gradient_checkpointing = True
    # The losses are means over one micro-batch (CCC is a statistic of the batch, not a sum over items), so
    # transformers' Trainer must not pass `num_items_in_batch` to forward (it would, seeing `**kwargs`).
    accepts_loss_kwargs = False
    # What the model card (README.md) says beyond the config: results, training set-up. Set by hf_ser
    # (`hf_ser.publishing.model_card.CardData`); never written into config.json or the weights.
    model_card_data = None
    # The pretrained checkpoints (Hub ids or paths) the model was built around, set by the loaders that start from
    # pretrained encoders: the card's `base_model`. A model loaded from its own folder takes it from its card.
    pretrained_from: tuple[str, ...] = ()

    # ------------------------------------------------------------------------------------------------ loading
    @classmethod
    def is_custom_code(cls) -> bool:
        # See the module docstring: our `_init_weights` is guarded like transformers' own, so let transformers
        # initialise missing weights module by module, including parameter-less parents (WavLM's positional
        # convolution, feature projection) whose special initialisation would otherwise be skipped.
        return False

    # Plain encoder checkpoints (`microsoft/wavlm-large`, ...) `from_pretrained` accepts: their `model_type`s. A
    # subclass that lists some implements `_config_around_encoder` and `_encoder_key_mapping`.
    encoder_checkpoint_types: tuple[str, ...] = ()

    @classmethod
    def _config_around_encoder(
        cls, encoder_config: PreTrainedConfig, config_kwargs: dict
    ) -> PreTrainedConfig:
        """The model config built around a plain encoder checkpoint's config; `config_kwargs` are the
        `from_pretrained` keyword arguments that name fields of `cls.config_class`."""
        raise NotImplementedError

    @classmethod
    def _encoder_key_mapping(
        cls, encoder_config: PreTrainedConfig, config: PreTrainedConfig
    ) -> dict[str, str]:
        """transformers' `key_mapping` from the encoder checkpoint's weight names to the model's."""
        raise NotImplementedError

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """transformers' `from_pretrained`, safetensors only unless `use_safetensors=False`, with the configured
        freezing re-applied. Models that list `encoder_checkpoint_types` also accept a plain encoder checkpoint,
        as `WavLMForSequenceClassification.from_pretrained("microsoft/wavlm-large", num_labels=8)` does: the config
        is built around the checkpoint's encoder config (keyword arguments that name config fields go to it), the
        encoder weights are loaded, the new parts are reported as newly initialised, and the checkpoint is
        recorded in `pretrained_from` (the model card's `base_model`)."""
        source = None
        if cls.encoder_checkpoint_types:
            source = encoder_checkpoint_config(
                pretrained_model_name_or_path, kwargs, cls.encoder_checkpoint_types
            )
        if source is not None:
            if kwargs.get("config") is None:
                kwargs["config"] = cls._config_around_encoder(
                    source, pop_config_kwargs(kwargs, cls.config_class)
                )
            kwargs.setdefault("key_mapping", cls._encoder_key_mapping(source, kwargs["config"]))
        # Safetensors only: a pickle-only checkpoint is refused unless the caller passes use_safetensors=False.
        kwargs.setdefault("use_safetensors", True)
        want_info = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(
            pretrained_model_name_or_path, *args, output_loading_info=True, **kwargs
        )
        if source is not None:
            model.pretrained_from = (str(pretrained_model_name_or_path),)
        _init_missing_weight_norms(model, info["missing_keys"])
        if kwargs.get("key_mapping"):
            # transformers would reverse a `key_mapping` on `save_pretrained`; it only translated a foreign layout
            # (an encoder checkpoint) on the way in, and hf_ser saves its own layout.
            model._weight_conversions = None
        # Loading materialises fresh parameters (requires_grad=True): re-apply the configured freezing.
        model.apply_freezing()
        on_load = _model_card_hooks[1]
        folder = os.path.join(str(pretrained_model_name_or_path), kwargs.get("subfolder") or "")
        if on_load is not None and os.path.isdir(folder):
            on_load(model, folder)  # a Hub id is not read: that would download the card
        return (model, info) if want_info else model

    def save_pretrained(self, save_directory, *args, is_main_process: bool = True, **kwargs):
        """`PreTrainedModel.save_pretrained`, then the model card (`README.md`) when hf_ser is imported (see the
        module docstring)."""
        result = super().save_pretrained(save_directory, *args, is_main_process=is_main_process, **kwargs)
        on_save = _model_card_hooks[0]
        if on_save is not None and is_main_process and os.path.isdir(save_directory):
            on_save(self, save_directory)
        return result

    def apply_freezing(self) -> None:
        """Freeze what the config says; subclasses implement it with `freeze_modules`, then call
        `self._sync_checkpointing()`."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------ checkpointing
    def _set_gradient_checkpointing(
        self,
        enable: bool = True,
        gradient_checkpointing_func: Callable = checkpoint,
        every_n_layers: int = 1,
    ):
        if enable:
            gradient_checkpointing_func = _non_reentrant(gradient_checkpointing_func)
        super()._set_gradient_checkpointing(
            enable=enable,
            gradient_checkpointing_func=gradient_checkpointing_func,
            every_n_layers=every_n_layers,
        )
        # What transformers asked for, layer by layer (every_n_layers); frozen layers are then left out.
        self._checkpointing_requested = {
            name: bool(module.gradient_checkpointing)
            for name, module in self.named_modules()
            if isinstance(module, GradientCheckpointingLayer)
        }
        self._sync_checkpointing()

    def _sync_checkpointing(self) -> None:
        """Checkpoint only layers with trainable parameters: a frozen layer keeps no activations for backward
        anyway, and re-running it in backward would be wasted work."""
        requested = getattr(self, "_checkpointing_requested", None)
        if not requested:
            return
        for name, module in self.named_modules():
            if name in requested:
                module.gradient_checkpointing = requested[name] and has_trainable_parameters(module)

    def checkpointed_layers(self) -> list[str]:
        """Names of the layers that activation checkpointing currently re-runs in backward."""
        return [
            name
            for name, module in self.named_modules()
            if isinstance(module, GradientCheckpointingLayer) and module.gradient_checkpointing
        ]

    # ------------------------------------------------------------------------------------------------ outputs
    def _output_flags(
        self, output_hidden_states: bool | None, output_attentions: bool | None
    ) -> tuple[bool, bool]:
        """The output flags of a forward call, falling back to the config's as transformers' models do."""
        if output_hidden_states is None:
            output_hidden_states = bool(getattr(self.config, "output_hidden_states", False))
        if output_attentions is None:
            output_attentions = bool(getattr(self.config, "output_attentions", False))
        return output_hidden_states, output_attentions


@contextlib.contextmanager
def eager_attention(config: PreTrainedConfig | None, enabled: bool = True):
    """Run the encoder with `config` on transformers' eager attention for one call (`enabled`): SDPA returns no
    attention weights, so `output_attentions=True` needs the eager path."""
    previous = getattr(config, "_attn_implementation", None)
    switch = enabled and previous not in (None, "eager")
    if switch:
        config._attn_implementation = "eager"
    try:
        yield
    finally:
        if switch:
            config._attn_implementation = previous


@torch.no_grad()
def _init_missing_weight_norms(model: nn.Module, missing_keys) -> None:
    """Initialise weight-normed convolutions (the positional convolution of WavLM, wav2vec2, HuBERT) whose g or v
    a checkpoint lacked, as a freshly built encoder has them: v drawn like PyTorch's default convolution weights,
    g = |v| (what `weight_norm` sets at construction). transformers initialises such a convolution through its
    computed `weight`, which leaves missing g and v unset (NaN after loading, in transformers' own classes too)."""
    missing = set(missing_keys)
    for name, module in model.named_modules():
        norms = getattr(module, "parametrizations", None)
        if norms is None or "weight" not in norms or not hasattr(norms.weight, "original1"):
            continue
        g_name, v_name = (
            f"{name}.parametrizations.weight.original0",
            f"{name}.parametrizations.weight.original1",
        )
        if g_name not in missing and v_name not in missing:
            continue
        g, v = norms.weight.original0, norms.weight.original1
        if v_name in missing:
            nn.init.kaiming_uniform_(v, a=math.sqrt(5))
        g.copy_(torch.norm_except_dim(v, 2, norms.weight[0].dim))


def _non_reentrant(function: Callable) -> Callable:
    keywords = getattr(function, "keywords", None) or {}
    if keywords.get("use_reentrant", False):
        logger.warning(
            "hf_ser models checkpoint activations non-reentrantly (use_reentrant=False): frozen lower layers give "
            "the first trainable layer an input that does not require grad, which reentrant checkpointing "
            "cannot train through."
        )
        return functools.partial(function.func, *function.args, **{**keywords, "use_reentrant": False})
    return function


__all__ = [
    "SERPreTrainedModel",
    "LayerRecorder",
    "eager_attention",
    "encoder_frame_mask",
    "freeze_modules",
    "load_encoder_weights",
    "pop_config_kwargs",
    "pretrained_encoder_state",
    "has_trainable_parameters",
    "encoder_checkpoint_config",
    "set_model_card_hooks",
]
