"""Weight decay on the classifier only (paper 000: "Dropout regularization of 0.3 and weight decay are applied to
prevent classifier overfitting"), for any `transformers.Trainer` subclass.

`Trainer` decays every weight matrix of the model (biases and LayerNorms excluded). Paper 000 applies weight decay
to the classifier; decaying the fine-tuned WavLM layers too pulls them towards zero rather than towards their
pretrained values. `ClassifierWeightDecayMixin` keeps `Trainer`'s own optimizer construction (and so resuming, the
schedulers and every `optim=` choice) and only narrows the set of decayed parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

CLASSIFIER_PREFIXES = ("head",)


def _in_modules(name: str, prefixes: Sequence[str]) -> bool:
    # Wrappers (DDP's "module.", torch.compile's "_orig_mod.") prefix the names: match whole name components.
    parts = name.split(".")
    return any(parts[i : i + len(p.split("."))] == p.split(".") for p in prefixes for i in range(len(parts)))


def classifier_decay_parameter_names(
    decay_names: Iterable[str], prefixes: Sequence[str] = CLASSIFIER_PREFIXES
) -> list[str]:
    """The names among `decay_names` (what `Trainer.get_decay_parameter_names` would decay) that belong to the
    classifier modules named by `prefixes` (default `("head",)`, the head of `WavLMForMASPClassification`)."""
    return [name for name in decay_names if _in_modules(name, prefixes)]


class ClassifierWeightDecayMixin:
    """Mix into a `Trainer` subclass (before it) so that `args.weight_decay` applies to the classifier only:

    ```python
    class Paper000Trainer(ClassifierWeightDecayMixin, FocalLossTrainer):
        pass
    ```

    `classifier_prefixes` names the classifier's modules (default `("head",)`).
    """

    classifier_prefixes: Sequence[str] = CLASSIFIER_PREFIXES

    def get_decay_parameter_names(self, model) -> list[str]:
        return classifier_decay_parameter_names(
            super().get_decay_parameter_names(model), self.classifier_prefixes
        )


__all__ = ["ClassifierWeightDecayMixin", "classifier_decay_parameter_names", "CLASSIFIER_PREFIXES"]
