"""The train section in the editor: what each setting means (hover), the losses, optimizers,
schedules, callbacks and metrics with the arguments each takes (hover, completion, signature
help), all read from netc's own tables in `train.py`.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..train_spec import (
    CALLBACKS,
    LOSS_ALIASES,
    LOSSES,
    METRICS,
    OPTIMIZERS,
    PER_OUTPUT,
    SCHEDULES,
    SETTINGS,
    Arg,
)

# setting: (what it does, its default); what it holds is train.SETTINGS
MEANING: dict[str, tuple[str, str | None]] = {
    "loss": ("the loss training minimizes", None),
    "loss_weights": ("how much each output's loss counts in the total", "1 each"),
    "optimizer": ("how the weights are updated from the gradients", "adam"),
    "metrics": ("what is measured and logged each epoch, besides the loss", "no metrics"),
    "epochs": ("how many passes over the training data", "1"),
    "batch_size": ("how many samples each step of the optimizer sees", "32"),
    "validation_split": ("the fraction of the data held out to validate on", "0.0"),
    "shuffle": ("whether the samples are shuffled before each epoch", "true"),
    "seed": ("the seed of the shuffling, the validation split and dropout", "0"),
    "class_weight": ("how much each class counts in the loss, one number per class", "none"),
    "callbacks": (
        "what runs between epochs: early stopping, lowering the rate, checkpoints",
        "none",
    ),
}

# name -> (what it is, its keyword arguments)
FUNCTIONS: dict[str, tuple[str, Mapping[str, Arg]]] = {
    **{name: ("loss", args) for name, args in LOSSES.items()},
    **{alias: (f"loss (`{name}`)", LOSSES[name]) for alias, name in LOSS_ALIASES.items()},
    **{name: ("optimizer", args) for name, args in OPTIMIZERS.items()},
    **{name: ("learning-rate schedule", args) for name, args in SCHEDULES.items()},
    **{name: ("callback", args) for name, args in CALLBACKS.items()},
}
# which names a setting's value takes
CHOICES: dict[str, tuple[str, ...]] = {
    "loss": (*LOSSES, *LOSS_ALIASES, PER_OUTPUT),
    "optimizer": tuple(OPTIMIZERS),
    "metrics": (*METRICS, PER_OUTPUT),
    "callbacks": tuple(CALLBACKS),
    "learning_rate": tuple(SCHEDULES),
    "loss_weights": (PER_OUTPUT,),
}


def setting_help(name: str) -> str | None:
    """Markdown for a train setting: what it does, what it holds, its default."""
    if name not in SETTINGS:
        return None
    meaning, default = MEANING.get(name, ("", None))
    text = f"```netc\ntrain {{ {name} = ... }}\n```\n\n**{name}**: {meaning}.\n\n"
    text += f"Value: {SETTINGS[name]}."
    if default is not None:
        text += f" Default: `{default}`."
    else:
        text += " Required."
    return text


def signature(name: str) -> str | None:
    """`adam(learning_rate, weight_decay, ...)`: a train function with its arguments."""
    if name not in FUNCTIONS:
        return None
    return f"{name}({', '.join(FUNCTIONS[name][1])})"


def function_help(name: str) -> str | None:
    """Markdown for a loss, optimizer, schedule or callback: what it is and its arguments."""
    if name in FUNCTIONS:
        what, args = FUNCTIONS[name]
        lines = [f"```netc\n{signature(name)}\n```", "", f"Keras' {what}, in the train section."]
        if args:
            lines += ["", *(f"- `{k}`: {a.describe()}" for k, a in args.items())]
        return "\n".join(lines)
    if name in METRICS:
        return f"```netc\n{name}\n```\n\nKeras' metric `{name}`, in the train section."
    if name == PER_OUTPUT:
        return f"```netc\n{PER_OUTPUT}(OUTPUT=value, ...)\n```\n\na value for each named output"
    return None
