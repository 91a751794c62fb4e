"""Fine-tuning: each model's layer depths, the layer-decay optimizer, `trainable` and the head's re-initialisation."""

import json
import pathlib
import subprocess
import sys
import warnings

import numpy as np
import pytest
import tensorflow_datasets as tfds
from harness import TINY_FAMILIES, random_images, tiny_model
from training_worker import TINY_STUDENT, tiny_recipe, write_image_folder

import keras_vits
from keras_vits.backend import keras, load_keras_file
from keras_vits.finetune import LayerDecayAdamW, layer_decay_optimizer, layer_rate_scales, set_trainable
from keras_vits.training import Recipe, train
from keras_vits.training.loop import build_model, no_weight_decay_variables
from keras_vits.variants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

pytestmark = pytest.mark.keras3_only

#: `{family: (depth of each stage's last block, top depth)}` of the tiny models, as timm's group_matcher numbers them.
EXPECTED_DEPTHS = {
    "vit": ((1,), 2),
    "deit": ((1,), 2),
    "swin": ((2, 4), 5),  # two stages of two blocks: one depth per block
    "pvt_v1": ((1, 2, 3, 4), 5),  # one depth per stage
    "pvt_v2": ((1, 2, 3, 4), 5),
    "pvt_v2_li": ((1, 2, 3, 4), 5),
}


def _depth_of_each_trainable_weight(model):
    depths = model.layer_depths()
    return {id(weight): depths[layer.name] for layer in model.layers for weight in layer.trainable_weights}


@pytest.mark.parametrize("family", sorted(TINY_FAMILIES))
def test_every_trainable_weight_has_a_depth_from_stem_to_head(family):
    model = tiny_model(family)
    weight_depths = _depth_of_each_trainable_weight(model)
    assert set(weight_depths) == {id(weight) for weight in model.trainable_weights}
    stage_depths, top = EXPECTED_DEPTHS[family]
    assert model.stage_depths() == stage_depths
    depths = model.layer_depths()
    assert max(depths.values()) == top
    assert model.classifier_layers() and all(depths[name] == top for name in model.classifier_layers())
    assert sorted(name for name, depth in depths.items() if depth == top) == model.classifier_layers()
    # the first layer holding weights is the patch embedding: the stem, depth 0
    first = next(layer for layer in model.layers if layer.weights)
    assert depths[first.name] == 0
    assert set(depths.values()) == set(range(top + 1))


def test_vit_depths_follow_the_blocks_and_tokens_sit_in_the_stem():
    depths = tiny_model("deit", depth=3).layer_depths()
    assert {depths[name] for name in ("patch_embed_proj", "cls_token", "dist_token", "pos_embed")} == {0}
    assert [depths[f"blocks_{i}_attn_qkv"] for i in range(3)] == [1, 2, 3]
    assert depths["norm"] == 3  # the final norm goes with the last block, as in timm
    assert depths["head"] == depths["head_dist"] == 4


def test_swin_patch_merging_shares_the_first_block_of_its_stage():
    depths = tiny_model("swin").layer_depths()
    assert depths["layers_1_downsample_reduction"] == depths["layers_1_blocks_0_attn_qkv"] == 3
    assert depths["layers_0_blocks_1_attn"] == 2  # the relative-position bias table is its block's


def test_a_model_without_head_has_no_classifier_and_tops_at_its_last_block():
    model = tiny_model("vit", num_classes=0, depth=2)
    assert model.classifier_layers() == []
    assert max(model.layer_depths().values()) == 2


# ----------------------------------------------------------------------------- per-layer learning rates


def _one_step(optimizer, model, gradient_value):
    """Applies one step of constant gradients; returns `{variable path: (before, after)}`."""
    variables = model.trainable_variables
    before = {v.path: np.array(v.numpy()) for v in variables}
    optimizer.apply_gradients([(np.full(v.shape, gradient_value, "float32"), v) for v in variables])
    return {v.path: (before[v.path], v.numpy()) for v in variables}


@pytest.mark.parametrize("family", ["deit", "swin"])
def test_each_variable_moves_by_its_layers_rate(family):
    """Adam's first step moves each weight by its rate (the gradient's sign, times lr): the ratio is the scale."""
    model = tiny_model(family)
    schedule = keras.optimizers.schedules.CosineDecay(1e-2, decay_steps=10)  # 1e-2 at the first step
    optimizer = layer_decay_optimizer(model, schedule, layer_decay=0.5, weight_decay=0.0)
    depths, top = model.layer_depths(), max(model.layer_depths().values())
    moved = _one_step(optimizer, model, 1.0)
    for layer in model.layers:
        for variable in layer.trainable_weights:
            before, after = moved[variable.path]
            expected = 1e-2 * 0.5 ** (top - depths[layer.name])
            np.testing.assert_allclose(np.abs(after - before), expected, rtol=1e-3, err_msg=variable.path)


def test_weight_decay_takes_each_layers_rate_and_spares_the_exclusions():
    model = tiny_model("vit", depth=2)
    optimizer = layer_decay_optimizer(model, 1e-2, layer_decay=0.5, weight_decay=0.1)
    moved = _one_step(optimizer, model, 0.0)  # no gradient: only the decay moves weights
    for name, scale in (("head/kernel", 1.0), ("blocks_1_mlp_fc1/kernel", 0.5), ("patch_embed_proj/kernel", 0.125)):
        before, after = moved[name]
        np.testing.assert_allclose(after, before * (1 - 0.1 * 1e-2 * scale), rtol=1e-6, err_msg=name)
    for excluded in ("cls_token/token", "pos_embed/embedding", "blocks_0_norm1/gamma", "head/bias"):
        before, after = moved[excluded]
        np.testing.assert_array_equal(after, before, err_msg=excluded)


def test_layer_decay_one_is_plain_adamw():
    model = tiny_model("vit")
    plain = tiny_model("vit")
    plain.set_weights(model.get_weights())
    gradients = [np.random.default_rng(i).normal(size=v.shape).astype("float32") for i, v in enumerate(plain.weights)]
    layered = layer_decay_optimizer(model, 1e-3, layer_decay=1.0, weight_decay=0.05)
    adamw = keras.optimizers.AdamW(1e-3, weight_decay=0.05)
    adamw.exclude_from_weight_decay(var_list=no_weight_decay_variables(plain))
    for _ in range(2):
        layered.apply_gradients(zip(gradients, model.trainable_variables))
        adamw.apply_gradients(zip(gradients, plain.trainable_variables))
    for mine, theirs in zip(model.weights, plain.weights):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-7)


def test_the_optimizer_trains_with_ema_and_loss_scaling_and_round_trips_its_config():
    model = tiny_model("vit")
    optimizer = layer_decay_optimizer(model, 1e-3, layer_decay=0.7, use_ema=True, ema_momentum=0.9)
    model.compile(optimizer=keras.optimizers.LossScaleOptimizer(optimizer), loss="sparse_categorical_crossentropy")
    model.fit(random_images((4, 32, 32, 1)), np.arange(4), epochs=1, verbose=0)
    again = LayerDecayAdamW.from_config(optimizer.get_config())
    assert again.rate_scales == optimizer.rate_scales
    assert again.rate_scales["blocks_0_attn_qkv/kernel"] == pytest.approx(0.7)


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5, float("nan")])
def test_layer_decay_outside_zero_one_is_refused(bad):
    with pytest.raises(ValueError, match=r"layer_decay must be in \(0, 1\]"):
        layer_rate_scales(tiny_model("vit"), bad)


def test_layer_decay_needs_a_keras_vits_model():
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(TypeError, match="needs a keras_vits model"):
        layer_decay_optimizer(other, 1e-3, layer_decay=0.5)


# ----------------------------------------------------------------------------- trainable


def _trainable_depths(model):
    depths = model.layer_depths()
    return sorted({depths[layer.name] for layer in model.layers if layer.trainable_weights})


@pytest.mark.parametrize(
    "family, trainable, still_trained",
    [
        ("swin", "all", [0, 1, 2, 3, 4, 5]),
        ("swin", "freeze:1", [3, 4, 5]),  # the stem and stage 0 (its two blocks, depths 1-2)
        ("swin", "freeze:2", [5]),
        ("swin", "head", [5]),
        ("deit", "freeze:1", [2]),  # a ViT's stages are its blocks
        ("pvt_v2", "freeze:3", [4, 5]),
    ],
)
def test_trainable_freezes_the_stem_and_the_first_stages(family, trainable, still_trained):
    model = tiny_model(family)
    set_trainable(model, trainable)
    assert _trainable_depths(model) == still_trained


def test_a_linear_probe_trains_the_classifier_alone():
    model = tiny_model("deit")
    set_trainable(model, "head")
    trained = {layer.name for layer in model.layers if layer.trainable_weights}
    assert trained == {"head", "head_dist"}


@pytest.mark.parametrize(
    "family, trainable, message",
    [
        ("swin", "freeze:3", r"freezes 3 stages, but .* has 2; use freeze:1 to freeze:2"),
        ("deit", "freeze:2", r"freezes 2 stages, but .* has 1"),
    ],
)
def test_freezing_more_stages_than_the_model_has_is_refused(family, trainable, message):
    with pytest.raises(ValueError, match=message):
        set_trainable(tiny_model(family), trainable)


def test_a_linear_probe_on_a_model_without_head_is_refused():
    with pytest.raises(ValueError, match=r"trainable='head' trains the classifier alone, but .* has no head"):
        set_trainable(tiny_model("vit", num_classes=0), "head")


@pytest.mark.parametrize("bad", ["heads", "freeze:0", "freeze:-1", "freeze", "freeze:1.5", "ALL"])
def test_trainable_takes_all_head_or_freeze_n(bad):
    with pytest.raises(ValueError, match=r'trainable takes "all", "head", "freeze:N"'):
        Recipe(name="x", trainable=bad)


# ----------------------------------------------------------------------------- recipe fields and the run


@pytest.mark.parametrize(
    "field, value, error, message",
    [
        ("layer_decay", 0.0, ValueError, r"layer_decay must be > 0.0 and <= 1.0, got 0.0"),
        ("layer_decay", 1.5, ValueError, r"layer_decay must be > 0.0 and <= 1.0, got 1.5"),
        ("layer_decay", "0.7", TypeError, r"layer_decay takes a float, got '0.7'"),
        ("layer_decay", True, TypeError, r"layer_decay takes a float, got True"),
        ("trainable", 2, TypeError, r"trainable takes a str, got 2"),
        ("head_init_scale", 0.0, ValueError, r"head_init_scale must be > 0.0, got 0.0"),
        ("head_init_scale", -1, ValueError, r"head_init_scale must be > 0.0"),
    ],
)
def test_fine_tuning_fields_are_checked_for_type_and_range(field, value, error, message):
    with pytest.raises(error, match=message):
        Recipe(name="x", **{field: value})


MISSING_DATA = "folder:/nonexistent/never/read"


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        ({"trainable": "freeze:2"}, ValueError, r"freezes 2 stages, but .* has 1"),
        ({"model": "convnet_small", "model_overrides": {}, "layer_decay": 0.5}, TypeError, "needs a keras_vits model"),
        # a Swin checkpoint for a DeiT: another family
        ({"initial_weights": "swin_tiny4.safetensors"}, ValueError, r"swin"),
        # a DeiT checkpoint of another width: another size
        ({"initial_weights": "deit_distilled.safetensors"}, ValueError, r"\(48,\)|48"),
    ],
)
def test_fine_tuning_settings_the_model_cannot_take_are_refused_before_any_data(
    tmp_path, fixtures_dir, overrides, error, message
):
    if "initial_weights" in overrides:
        overrides = {**overrides, "initial_weights": str(fixtures_dir / overrides["initial_weights"])}
    recipe = tiny_recipe(dataset=MISSING_DATA, **overrides)  # reading the data would fail: no such folder
    with pytest.raises(error, match=message):
        train(recipe, tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()


def test_a_run_from_timm_weights_normalised_unlike_them_is_warned_with_the_fix(tmp_path, fixtures_dir):
    """A shipped recipe kept with `--set model=...` normalised the new model's images as the old one's, unsaid."""
    checkpoint = str(fixtures_dir / "deit_distilled.safetensors")
    unlike = tiny_recipe(dataset=MISSING_DATA, mean=(0.5,) * 3, std=(0.5,) * 3, initial_weights=checkpoint)
    with (
        pytest.warns(
            UserWarning,
            match=r"deit_tiny_distilled_patch16_224's weights were trained with mean=\[0.485, "
            r".*--set mean=\[0.485,0.456,0.406\] std=\[0.229,0.224,0.225\]",
        ),
        pytest.raises(ValueError, match="Checkpoint does not fit"),  # the run stops before any data is read
    ):
        train(unlike, tmp_path / "unlike", verbose=0)
    like = tiny_recipe(
        dataset=MISSING_DATA,
        mean=IMAGENET_DEFAULT_MEAN,
        std=IMAGENET_DEFAULT_STD,
        initial_weights=checkpoint,
    )
    with warnings.catch_warnings(), pytest.raises(ValueError, match="Checkpoint does not fit"):
        warnings.simplefilter("error", UserWarning)
        train(like, tmp_path / "like", verbose=0)


DEIT_FIXTURE = {"patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 3}


def _fine_tune_from_fixture(tmp_path, fixtures_dir, name, **overrides):
    """A few steps of the fixture DeiT (10 classes) fine-tuned on a 3-class RGB folder; returns the result."""
    data = tmp_path / "images"
    if not data.exists():
        write_image_folder(data, per_class=4, size=32)
    recipe = tiny_recipe(
        dataset=f"folder:{data}",
        eval_split="train",
        image_size=32,
        mean=IMAGENET_DEFAULT_MEAN,
        std=IMAGENET_DEFAULT_STD,
        model_overrides=DEIT_FIXTURE,
        initial_weights=str(fixtures_dir / "deit_distilled.safetensors"),
        epochs=1,
        batch_size=4,
        **overrides,
    )
    return train(recipe, tmp_path / name, verbose=1)


def test_a_fresh_head_is_scaled_by_head_init_scale_and_the_run_says_so(tmp_path, fixtures_dir, capsys):
    settings = dict(base_lr=1e-12, min_lr=0.0, weight_decay=0.0)  # nothing moves: the heads are as initialised
    plain = _fine_tune_from_fixture(tmp_path, fixtures_dir, "plain", **settings)["student"]
    assert "scaled by head_init_scale=1: 3 classes here, 10 in" in capsys.readouterr().out
    scaled = _fine_tune_from_fixture(tmp_path, fixtures_dir, "scaled", head_init_scale=0.001, **settings)["student"]
    assert "Head head, head_dist initialised afresh and scaled by head_init_scale=0.001" in capsys.readouterr().out
    for name in ("head", "head_dist"):
        kernel, scaled_kernel = plain.get_layer(name).kernel.numpy(), scaled.get_layer(name).kernel.numpy()
        np.testing.assert_allclose(scaled_kernel, 0.001 * kernel, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(
        scaled.get_layer("blocks_1_attn_qkv").kernel, plain.get_layer("blocks_1_attn_qkv").kernel
    )


def test_a_linear_probe_run_moves_the_head_alone(tmp_path, fixtures_dir):
    result = _fine_tune_from_fixture(tmp_path, fixtures_dir, "probe", trainable="head", base_lr=0.5, layer_decay=0.5)
    start = keras_vits.create_model(
        "deit_tiny_distilled_patch16_224",
        weights=str(fixtures_dir / "deit_distilled.safetensors"),
        num_classes=3,
        image_size=32,
        **DEIT_FIXTURE,
    )
    student = result["student"]
    for layer in student.layers:
        if layer.name in ("head", "head_dist"):  # fresh heads: their start is random, but they trained
            assert not np.allclose(layer.kernel.numpy(), start.get_layer(layer.name).kernel.numpy())
            continue
        for trained, started in zip(layer.weights, start.get_layer(layer.name).weights):
            np.testing.assert_array_equal(trained.numpy(), started.numpy(), err_msg=layer.name)


def test_a_keras_file_of_another_size_is_refused_before_any_data(tmp_path):
    other = build_model(tiny_recipe(model_overrides=dict(TINY_STUDENT, embed_dim=8)), 10, 1)
    other.save(tmp_path / "other.keras")
    with pytest.raises(ValueError, match=r"do not fit .*\(8,\) in the file, \(16,\) in the model"):
        train(tiny_recipe(dataset=MISSING_DATA, initial_weights=str(tmp_path / "other.keras")), tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_layer_decay_run_resumes_where_an_uninterrupted_one_goes(tmp_path):
    """The optimizer's state is checkpointed and its per-layer rates rebuilt: a resume changes nothing."""
    recipe = tiny_recipe(layer_decay=0.5, trainable="freeze:1", model_overrides=dict(TINY_STUDENT, depth=2))
    with tfds.testing.mock_data(num_examples=32):
        whole = train(recipe, tmp_path / "whole", verbose=0)["student"]
        train(recipe, tmp_path / "resumed", max_steps=3, verbose=0)
        resumed = train(recipe, tmp_path / "resumed", verbose=0)["student"]
    for got, want in zip(resumed.weights, whole.weights):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6, err_msg=got.path)


@pytest.mark.slow
def test_layer_decay_under_mirrored_strategy_matches_one_device(tmp_path):
    worker = pathlib.Path(__file__).parent / "training_worker.py"
    command = [sys.executable, str(worker), str(tmp_path), "--devices", "2", "--compare-mirrored"]
    command += ["--set", "layer_decay=0.5"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    line = [ln for ln in result.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    one, two = json.loads(line[len("RESULT ") :]).values()
    np.testing.assert_allclose(two["train_losses"], one["train_losses"], rtol=1e-4)
    assert two["checksum"] == pytest.approx(one["checksum"], rel=1e-4)


# ----------------------------------------------------------------------------- the shipped folder recipes

#: What shrinks the shipped recipes to the tiny fixtures (32x32, patch 8, 48 wide, 2 blocks) and a few steps.
TINY_FOLDER_RUN = [
    "--set", "image_size=32", 'model_overrides={"patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 3}',
    "epochs=1", "batch_size=4", "warmup_epochs=0", "randaugment=null", "compile_mode=graph",
]  # fmt: skip


@pytest.mark.slow
def test_the_folder_recipes_fine_tune_from_timm_then_distil_into_a_small_deit(tmp_path, fixtures_dir, capsys):
    from keras_vits.cli import main

    data = tmp_path / "images"
    write_image_folder(data / "train", per_class=4, size=32)
    write_image_folder(data / "test", per_class=2, size=32)
    teacher = tmp_path / "teacher"
    command = ["train", "--recipe", "finetune_folder", "--dataset", f"folder:{data}", "--output", str(teacher)]
    command += ["--set", f"initial_weights={fixtures_dir / 'vit_token.safetensors'}", *TINY_FOLDER_RUN]
    assert main(command) == 0
    assert "Head head initialised afresh and scaled by head_init_scale=0.001: 3 classes here, 10 in" in (
        capsys.readouterr().out
    )
    student = tmp_path / "student"
    command = ["train", "--recipe", "distil_folder", "--dataset", f"folder:{data}", "--output", str(student)]
    command += ["--teacher", str(teacher / "model.keras")]
    command += ["--set", f"initial_weights={fixtures_dir / 'deit_distilled.safetensors'}", *TINY_FOLDER_RUN]
    assert main(command) == 0
    saved = json.loads((student / "recipe.json").read_text())
    assert (saved["distillation"], saved["layer_decay"], saved["model"]) == (
        "hard",
        0.75,
        "deit_tiny_distilled_patch16_224",
    )
    assert isinstance(load_keras_file(student / "model.keras"), keras_vits.DeiT)


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("layer_decay=1.5", "layer_decay must be > 0.0 and <= 1.0, got 1.5"),
        ("trainable=freeze:x", 'trainable takes "all", "head", "freeze:N"'),
        ("head_init_scale=0", "head_init_scale must be > 0.0, got 0"),
    ],
)
def test_the_cli_refuses_bad_fine_tuning_settings_in_one_line(tmp_path, capsys, assignment, message):
    from keras_vits.cli import main

    output = tmp_path / "run"
    assert main(["train", "--recipe", "finetune_folder", "--output", str(output), "--set", assignment]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error
    assert not output.exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--layer-decay", "1.5"], "layer_decay must be > 0.0 and <= 1.0, got 1.5"),
        (["--trainable", "freeze:x"], 'trainable takes "all", "head", "freeze:N"'),
        (["--head-init-scale", "0"], "head_init_scale must be > 0.0, got 0"),
    ],
)
def test_the_fine_tuning_flags_reach_the_recipe_and_its_checks(tmp_path, capsys, flags, message):
    from keras_vits.cli import main

    output = tmp_path / "run"
    assert main(["train", "--recipe", "finetune_folder", "--output", str(output), *flags]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error
    assert not output.exists()
    shown = ["train", "--recipe", "finetune_folder", "--layer-decay", "0.5", "--trainable", "head", "--show"]
    assert main([*shown, "--head-init-scale", "0.01"]) == 0
    rows = dict(line.split(maxsplit=1) for line in capsys.readouterr().out.splitlines()[1:])
    assert (rows["layer_decay"], rows["trainable"], rows["head_init_scale"]) == ("0.5", '"head"', "0.01")
