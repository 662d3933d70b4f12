"""The train section: every setting checked with located, exact diagnostics (did-you-mean for
unknown names, the kind and range of each argument, settings that must agree with each other
and with the model), and the TrainSpec a valid section gives (per-output losses, schedules,
callbacks, logged names, the command line's overrides)."""

from __future__ import annotations

import textwrap

import pytest

import netc
from netc.train_spec import Choice, TrainSpec

ONE = "model m(x: f32[N, 4]) -> (logits: f32[N, 3]) { logits = x |> dense(3) }\n"
TWO = (
    "model m(x: f32[N, 4]) -> (logits: f32[N, 3], box: f32[N, 2]) {\n"
    "    h = x |> dense(8)\n"
    "    logits = h |> dense(3)\n"
    "    box = h |> dense(2)\n"
    "}\n"
)
SPARSE = "loss = sparse_categorical_crossentropy(from_logits=true)"


def source(model: str, *entries: str) -> str:
    return model + "train {\n" + "".join(f"    {e}\n" for e in entries) + "}\n"


def spec(tmp_path, model: str, *entries: str) -> TrainSpec:
    path = tmp_path / "m.net"
    path.write_text(source(model, *entries))
    m = netc.compile(path)
    assert m.warnings == ()
    assert m.train is not None
    return m.train


def diagnostics(tmp_path, model: str, *entries: str) -> list[tuple]:
    """(line, col, message, hint) of each error; the train section starts on the line after
    the model."""
    path = tmp_path / "m.net"
    path.write_text(source(model, *entries))
    with pytest.raises(netc.NetcError) as info:
        netc.compile(path)
    return [(d.span.line, d.span.col, d.message, d.hint) for d in info.value.diagnostics]


def line(model: str, entry: int = 0) -> int:
    """The line of the train section's `entry`-th setting."""
    return model.count("\n") + 2 + entry


# --- the example, and values that are not what they must be -----------------------------


def test_a_string_where_a_number_belongs_is_an_error(tmp_path):
    got = diagnostics(tmp_path, ONE, SPARSE, 'optimizer = adam("0.001")')
    assert got == [
        (
            line(ONE, 1),
            22,
            "optimizer `adam`: `learning_rate` must be a number > 0 or a learning-rate "
            'schedule, got "0.001"',
            None,
        )
    ]


@pytest.mark.parametrize(
    "entry, col, message",
    [
        (
            "optimizer = sgd(momentum=1.5)",
            30,
            "optimizer `sgd`: `momentum` must be a number in [0, 1], got 1.5",
        ),
        (
            "optimizer = adam(beta_1=1)",
            29,
            "optimizer `adam`: `beta_1` must be a number in [0, 1), got 1",
        ),
        (
            "optimizer = adam(amsgrad=1)",
            30,
            "optimizer `adam`: `amsgrad` must be a bool, got 1",
        ),
        (
            "optimizer = adam(learning_rate=-0.1)",
            36,
            "optimizer `adam`: `learning_rate` must be a number > 0 or a learning-rate "
            "schedule, got -0.1",
        ),
        (
            "optimizer = adamw(weight_decay=true)",
            36,
            "optimizer `adamw`: `weight_decay` must be a number >= 0 or `none`, got true",
        ),
        (
            "optimizer = sgd(learning_rate=exponential_decay(0.1, 100, decay_rate=0))",
            74,
            "learning-rate schedule `exponential_decay`: `decay_rate` must be a number > 0, got 0",
        ),
        (
            "optimizer = sgd(cosine_decay(0.1, 1.5))",
            39,
            "learning-rate schedule `cosine_decay`: `decay_steps` must be an int >= 1, got 1.5",
        ),
        (
            "callbacks = [early_stopping(patience=-1)]",
            42,
            "callback `early_stopping`: `patience` must be an int >= 0, got -1",
        ),
        (
            'callbacks = [early_stopping(mode="minimum")]',
            38,
            'callback `early_stopping`: `mode` must be "auto", "min" or "max", got "minimum"',
        ),
        (
            "callbacks = [reduce_lr_on_plateau(factor=1)]",
            46,
            "callback `reduce_lr_on_plateau`: `factor` must be a number in (0, 1), got 1",
        ),
        (
            "callbacks = [model_checkpoint(path=3)]",
            40,
            "callback `model_checkpoint`: `path` must be a string or `none`, got 3",
        ),
        (
            "class_weight = [1, -2, 1]",
            20,
            "train setting `class_weight` must be a list of numbers >= 0, got (1, -2, 1)",
        ),
        (
            'class_weight = "balanced"',
            20,
            'train setting `class_weight` must be a list of numbers >= 0, got "balanced"',
        ),
    ],
)
def test_an_argument_of_the_wrong_kind_or_range_is_located_at_its_value(
    tmp_path, entry, col, message
):
    got = diagnostics(tmp_path, ONE, SPARSE, entry)
    assert [(g[0], g[1], g[2]) for g in got] == [(line(ONE, 1), col, message)]


def test_a_loss_argument_of_the_wrong_kind(tmp_path):
    got = diagnostics(tmp_path, ONE, "loss = categorical_crossentropy(label_smoothing=2)")
    assert got == [
        (
            line(ONE),
            53,
            "loss `categorical_crossentropy`: `label_smoothing` must be a number in [0, 1], got 2",
            None,
        )
    ]


# --- unknown names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry, col, message, hint",
    [
        ("epoch = 3", 5, "unknown train setting `epoch`", "did you mean `epochs`?"),
        (
            "class_weights = [1, 1, 1]",
            5,
            "unknown train setting `class_weights`",
            "did you mean `class_weight`?",
        ),
        ("optimizer = adma", 17, "unknown optimizer `adma`", "did you mean `adam`?"),
        (
            "optimizer = adam(beta1=0.9)",
            22,
            "optimizer `adam` has no argument `beta1`",
            "did you mean `beta_1`?",
        ),
        (
            "optimizer = adam(cosine_decy(1e-3, 100))",
            22,
            "unknown learning-rate schedule `cosine_decy`",
            "did you mean `cosine_decay`?",
        ),
        (
            "optimizer = adam(cosine_decay(1e-3, 100, alhpa=0.1))",
            46,
            "learning-rate schedule `cosine_decay` has no argument `alhpa`",
            "did you mean `alpha`?",
        ),
        (
            "callbacks = [early_stoping(patience=2)]",
            18,
            "unknown callback `early_stoping`",
            "did you mean `early_stopping`?",
        ),
        (
            "callbacks = [early_stopping(patiense=2)]",
            33,
            "callback `early_stopping` has no argument `patiense`",
            "did you mean `patience`?",
        ),
        ("metrics = [acuracy]", 16, "unknown metric `acuracy`", "did you mean `accuracy`?"),
        (
            'callbacks = [early_stopping(monitor="val_acc")]',
            41,
            'callback `early_stopping` monitors "val_acc", which training does not log',
            "logged: loss, val_loss",
        ),
    ],
)
def test_unknown_names_are_located_with_a_did_you_mean(tmp_path, entry, col, message, hint):
    assert diagnostics(tmp_path, ONE, SPARSE, entry) == [(line(ONE, 1), col, message, hint)]


def test_a_monitor_may_name_a_metric_and_its_validation_copy(tmp_path):
    got = diagnostics(
        tmp_path,
        ONE,
        SPARSE,
        "metrics = [accuracy]",
        'callbacks = [early_stopping(monitor="val_acuracy")]',
    )
    assert got == [
        (
            line(ONE, 2),
            41,
            'callback `early_stopping` monitors "val_acuracy", which training does not log',
            "did you mean `val_accuracy`?",
        )
    ]
    ok = spec(
        tmp_path,
        ONE,
        SPARSE,
        "metrics = [accuracy]",
        'callbacks = [early_stopping(monitor="val_accuracy", patience=2)]',
    )
    assert ok.callbacks == (Choice("early_stopping", {"monitor": "val_accuracy", "patience": 2}),)


def test_every_item_of_a_list_is_checked(tmp_path):
    got = diagnostics(
        tmp_path,
        ONE,
        SPARSE,
        "callbacks = [early_stoping(patience=2), reduce_lr_on_plateau(factor=2), model_checkpoint]",
    )
    assert [(g[1], g[2]) for g in got] == [
        (18, "unknown callback `early_stoping`"),
        (73, "callback `reduce_lr_on_plateau`: `factor` must be a number in (0, 1), got 2"),
    ]


# --- required and positional arguments, and arguments that exclude each other --------------------


def test_schedules_need_their_required_arguments(tmp_path):
    got = diagnostics(tmp_path, ONE, SPARSE, "optimizer = sgd(exponential_decay(0.1, 100))")
    assert got == [
        (
            line(ONE, 1),
            21,
            "learning-rate schedule `exponential_decay` needs `decay_rate`",
            "exponential_decay(initial_learning_rate=..., decay_steps=..., decay_rate=...)",
        )
    ]
    got = diagnostics(tmp_path, ONE, SPARSE, "optimizer = sgd(cosine_decay(0.1, 100, 0.5))")
    assert got == [
        (
            line(ONE, 1),
            44,
            "learning-rate schedule `cosine_decay` takes at most 2 arguments by position "
            "(initial_learning_rate, decay_steps)",
            None,
        )
    ]


def test_piecewise_boundaries_increase_and_have_one_value_fewer(tmp_path):
    got = diagnostics(
        tmp_path,
        ONE,
        SPARSE,
        "optimizer = sgd(piecewise_constant_decay(boundaries=[100, 50], values=[0.1, 0.01, 1e-3]))",
    )
    assert [(g[1], g[2]) for g in got] == [
        (
            46,
            "learning-rate schedule `piecewise_constant_decay`: `boundaries` must increase, "
            "got (100, 50)",
        )
    ]
    got = diagnostics(
        tmp_path,
        ONE,
        SPARSE,
        "optimizer = sgd(piecewise_constant_decay(boundaries=[100], values=[0.1]))",
    )
    assert [(g[1], g[2]) for g in got] == [
        (
            64,
            "learning-rate schedule `piecewise_constant_decay` needs one more value than "
            "boundaries: 1 boundaries, 1 values",
        )
    ]


def test_one_kind_of_gradient_clipping(tmp_path):
    got = diagnostics(tmp_path, ONE, SPARSE, "optimizer = adam(clipnorm=1.0, clipvalue=0.5)")
    assert [(g[1], g[2]) for g in got] == [
        (
            36,
            "optimizer `adam` takes one of `clipnorm`, `clipvalue` and `global_clipnorm`, "
            "got `clipnorm` and `clipvalue`",
        )
    ]


def test_a_checkpoint_writes_weights_by_name(tmp_path):
    got = diagnostics(tmp_path, ONE, SPARSE, 'callbacks = [model_checkpoint(path="best.h5")]')
    assert [(g[1], g[2]) for g in got] == [
        (
            35,
            'callback `model_checkpoint`: `path` must end in .safetensors or .npz, got "best.h5"',
        )
    ]


def test_a_schedule_and_reduce_on_plateau_exclude_each_other(tmp_path):
    got = diagnostics(
        tmp_path,
        ONE,
        SPARSE,
        "optimizer = adam(cosine_decay(1e-3, 100))",
        "callbacks = [reduce_lr_on_plateau]",
    )
    assert got == [
        (
            line(ONE, 2),
            18,
            "callback `reduce_lr_on_plateau` sets the learning rate, which the `cosine_decay` "
            "schedule computes",
            "use a number as the learning rate, or drop one of the two",
        )
    ]


# --- settings against the model -----------------------------------------------------------------


def test_per_output_names_the_models_outputs(tmp_path):
    got = diagnostics(tmp_path, TWO, "loss = per_output(logit=mse)")
    assert got == [(line(TWO), 23, "model `m` has no output `logit`", "did you mean `logits`?")]
    got = diagnostics(tmp_path, TWO, "loss = per_output(mse)")
    assert got == [
        (
            line(TWO),
            23,
            "per_output takes the model's outputs by name",
            "per_output(logits=..., box=...)",
        )
    ]


def test_a_list_of_losses_has_one_per_output(tmp_path):
    got = diagnostics(tmp_path, TWO, "loss = [mse]")
    assert got == [
        (
            line(TWO),
            12,
            "`loss` lists 1 value for 2 outputs (logits, box)",
            "give one per output, or name them: per_output(logits=..., box=...)",
        )
    ]


def test_losses_fit_their_outputs(tmp_path):
    model = (
        "model m(x: f32[N, 4]) -> (score: f32[N], cls: i64[N]) {\n"
        "    score = x |> reduce_mean(axis=[1])\n"
        "    cls = x |> argmax(axis=1)\n"
        "}\n"
    )
    got = diagnostics(tmp_path, model, SPARSE)
    assert [(g[1], g[2]) for g in got] == [
        (12, "output `cls` is i64: a loss needs a float output"),
        (
            12,
            "sparse_categorical_crossentropy needs output `score` to end in a class axis, "
            "got f32[N]",
        ),
    ]


def test_metrics_fit_a_sparse_losss_class_indices(tmp_path):
    got = diagnostics(tmp_path, ONE, SPARSE, "metrics = [accuracy, mae]")
    assert got == [
        (
            line(ONE, 1),
            26,
            "metric `mae` compares targets shaped like output `logits`, but "
            "sparse_categorical_crossentropy's targets are class indices",
            "use `accuracy` or `sparse_categorical_accuracy`",
        )
    ]


def test_weights_and_metrics_of_an_untrained_output_are_errors(tmp_path):
    got = diagnostics(
        tmp_path,
        TWO,
        "loss = per_output(box=mse)",
        "loss_weights = per_output(logits=2.0)",
        "metrics = per_output(logits=[accuracy])",
    )
    assert [(g[0], g[1], g[2]) for g in got] == [
        (line(TWO, 1), 38, "`loss_weights` weighs output `logits`, which has no loss"),
        (line(TWO, 2), 33, "`metrics` measures output `logits`, which has no loss"),
    ]


def test_class_weights_fit_the_one_classified_output(tmp_path):
    got = diagnostics(tmp_path, ONE, SPARSE, "class_weight = [1, 2]")
    assert [(g[1], g[2]) for g in got] == [
        (20, "class_weight gives 2 weights, output `logits` scores 3 classes")
    ]
    got = diagnostics(tmp_path, ONE, "loss = mse", "class_weight = [1, 2, 3]")
    assert [(g[1], g[2]) for g in got] == [
        (20, "class_weight weighs the classes of a classification loss, not `mean_squared_error`")
    ]
    got = diagnostics(tmp_path, TWO, "loss = mse", "class_weight = [1, 2, 3]")
    assert [(g[1], g[2]) for g in got] == [
        (
            20,
            "class_weight applies to a model with one trained output; model `m` trains 2 "
            "(logits, box)",
        )
    ]


def test_the_existing_messages_stay(tmp_path):
    assert diagnostics(tmp_path, ONE, "epochs = 2") == [
        (
            line(ONE) - 1,
            1,
            "the train section needs a `loss`",
            "e.g. `loss = sparse_categorical_crossentropy(from_logits=true)`",
        )
    ]
    got = diagnostics(tmp_path, ONE, SPARSE, "epochs = 2.5", "batch_size = 0", "shuffle = 1")
    assert [(g[2]) for g in got] == [
        "train setting `epochs` must be an int, got the float 2.5",
        "train setting `batch_size` must be >= 1, got 0",
        "train setting `shuffle` must be a bool, got the int 1",
    ]


# --- what a valid section gives ------------------------------------------------------------------


def test_a_full_section(tmp_path):
    t = spec(
        tmp_path,
        "const LR = 3e-3\n" + TWO,
        "loss = per_output(logits=sparse_categorical_crossentropy(from_logits=true), box=mse)",
        "loss_weights = [1, 0.5]",
        "optimizer = adam(learning_rate=cosine_decay(LR, 200, alpha=0.1), clipnorm=1)",
        "metrics = per_output(logits=[accuracy], box=[mae])",
        "epochs = 4",
        "batch_size = 16",
        "validation_split = 0.25",
        "shuffle = false",
        "seed = 7",
        'callbacks = [early_stopping(monitor="val_logits_accuracy", restore_best_weights=true)]',
    )
    assert t.losses() == {
        "logits": Choice("sparse_categorical_crossentropy", {"from_logits": True}),
        "box": Choice("mean_squared_error", {}),
    }
    assert t.loss_weights == {"logits": 1.0, "box": 0.5}
    assert t.optimizer == Choice(
        "adam",
        {
            "learning_rate": Choice(
                "cosine_decay", {"initial_learning_rate": 3e-3, "decay_steps": 200, "alpha": 0.1}
            ),
            "clipnorm": 1.0,
        },
    )
    assert (t.epochs, t.batch_size, t.validation_split, t.shuffle, t.seed) == (
        4,
        16,
        0.25,
        False,
        7,
    )
    assert t.log_names() == ("loss", "logits_loss", "box_loss", "logits_accuracy", "box_mae")
    assert t.log_names(["dense_1", "dense_2"])[1:3] == ("dense_1_loss", "dense_2_loss")
    assert t.outputs == ("logits", "box")


def test_per_output_trains_only_the_outputs_it_names(tmp_path):
    t = spec(tmp_path, TWO, "loss = per_output(box=huber(delta=2))", "metrics = [mae]")
    assert t.losses() == {"box": Choice("huber", {"delta": 2.0})}
    assert t.output_metrics("box") == ("mae",) and t.output_metrics("logits") == ()
    assert t.log_names() == ("loss", "box_mae")  # Keras logs no per-output loss for one


def test_the_command_line_overrides_the_section(tmp_path):
    t = spec(tmp_path, ONE, SPARSE, "optimizer = adam(1e-3)", "epochs = 5")
    o = t.with_overrides(epochs=2, batch_size=8, learning_rate=0.05, seed=3)
    assert (o.epochs, o.batch_size, o.seed, o.learning_rate) == (2, 8, 3, 0.05)
    assert t.with_overrides() == t
    cosine = spec(tmp_path, ONE, SPARSE, "optimizer = sgd(cosine_decay(0.1, 10))")
    assert cosine.with_overrides(learning_rate=0.5).learning_rate == Choice(
        "cosine_decay", {"initial_learning_rate": 0.5, "decay_steps": 10}
    )
    piecewise = spec(
        tmp_path,
        ONE,
        SPARSE,
        "optimizer = sgd(piecewise_constant_decay([10], [0.1, 0.01]))",
    )
    with pytest.raises(ValueError, match="`piecewise_constant_decay` schedule, which has no"):
        piecewise.with_overrides(learning_rate=0.5)


def test_a_section_prints_back_and_reads_the_same(tmp_path):
    from netc.parse import parse
    from netc.syntax import format_module

    text = source(
        ONE,
        SPARSE,
        "optimizer = adam(learning_rate=exponential_decay(0.01, 100, 0.5, staircase=true))",
        'callbacks = [early_stopping(patience=3), model_checkpoint(path="best.npz")]',
        "class_weight = [1, 2.5, 1]",
    )
    printed = format_module(parse(textwrap.dedent(text), "m.net"))
    (tmp_path / "a.net").write_text(text)
    (tmp_path / "b.net").write_text(printed)
    assert netc.compile(tmp_path / "a.net").train == netc.compile(tmp_path / "b.net").train


# --- docs/training.md ----------------------------------------------------------------------------


def test_training_md_documents_every_name_and_its_example_compiles(tmp_path):
    import re
    from pathlib import Path

    from netc.train_spec import CALLBACKS, LOSSES, METRICS, OPTIMIZERS, SCHEDULES, SETTINGS

    text = (Path(__file__).resolve().parent.parent / "docs" / "training.md").read_text()
    names = [*SETTINGS, *LOSSES, *OPTIMIZERS, *SCHEDULES, *CALLBACKS, *METRICS]
    names += [
        a for table in (LOSSES, OPTIMIZERS, SCHEDULES, CALLBACKS) for t in table.values() for a in t
    ]
    missing = sorted({n for n in names if f"`{n}`" not in text})
    assert not missing, f"not documented in docs/training.md: {missing}"
    examples = re.findall(r"^```net\n(.*?)^```$", text, re.M | re.S)
    assert examples
    for i, example in enumerate(examples):
        path = tmp_path / f"example_{i}.net"
        path.write_text(example)
        model = netc.compile(path)
        assert model.warnings == () and model.train is not None
