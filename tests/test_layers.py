"""Each custom layer alone: values against NumPy references, config round trips, errors."""

import inspect
import json

import numpy as np
import pytest
import tensorflow as tf

from keras_vits.backend import keras
from keras_vits.layers import (
    CUSTOM_LAYERS,
    AdaptiveAveragePooling2D,
    AttentionCore,
    AttentionCoreBase,
    DropPath,
    DynamicPositionEmbedding,
    LayerNorm,
    LayerScale,
    PatchMerging2x2,
    PositionEmbedding,
    PrependToken,
    SpatialReductionAttentionCore,
    WindowAttentionCore,
    WindowPartition,
    WindowReverse,
    XlaFriendlyDepthwiseConv2D,
    classifier_head,
    patch_embed,
    patch_grid,
    sincos_1d_table,
    sincos_2d_table,
)

RNG = np.random.default_rng(0)


def _tokens(*shape):
    return RNG.normal(size=shape).astype("float32")


LAYER_CASES = [
    (PrependToken(initializer_stddev=0.5), (2, 5, 8)),
    (PositionEmbedding((2, 3), num_prefix_tokens=1, kind="learned"), (2, 7, 8)),
    (PositionEmbedding((2, 3), num_prefix_tokens=2, kind="sincos1d"), (2, 8, 8)),
    (PositionEmbedding((2, 4), num_prefix_tokens=0, kind="sincos2d", temperature=100.0), (2, 8, 8)),
    (AttentionCore(num_heads=2, attn_drop_rate=0.1), (2, 5, 24)),
    (DropPath(0.25), (4, 5, 8)),
    (LayerScale(0.3), (2, 5, 8)),
    (LayerNorm(epsilon=1e-5), (2, 5, 8)),
    (XlaFriendlyDepthwiseConv2D(3, padding="same"), (2, 5, 6, 4)),
]


@pytest.mark.parametrize(
    "layer, shape", LAYER_CASES, ids=lambda c: type(c).__name__ if not isinstance(c, tuple) else ""
)
def test_config_round_trip_through_keras_serialization(layer, shape):
    inputs = _tokens(*shape)
    expected = layer(inputs)
    config = json.loads(json.dumps(keras.layers.serialize(layer)))
    assert config["class_name"].endswith(type(layer).__name__)
    clone = keras.layers.deserialize(config)
    assert type(clone) is type(layer)
    assert clone.get_config() == layer.get_config()
    clone(inputs)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(inputs).numpy(), expected.numpy(), atol=1e-6)


def test_every_custom_layer_is_registered():
    for cls in CUSTOM_LAYERS:
        assert keras.utils.get_registered_name(cls) == f"keras_vits>{cls.__name__}"


# Custom layers written from `keras.layers.Layer` (LayerNorm and the depth-wise conv extend Keras's own).
OWN_LAYERS = [
    PrependToken(),
    PositionEmbedding((2, 3)),
    AttentionCore(2, attn_drop_rate=0.1),
    SpatialReductionAttentionCore(2),
    WindowAttentionCore(2, 4, (8, 8), shift_size=2, relative_position_bias=False, attn_drop_rate=0.1),
    WindowPartition(4, shift_size=2),
    WindowReverse(4, (6, 6), shift_size=2, pad_before_shift=False),
    DropPath(0.1),
    LayerScale(0.1),
    AdaptiveAveragePooling2D(7),
    PatchMerging2x2(),
]


@pytest.mark.parametrize("layer", OWN_LAYERS, ids=lambda layer: type(layer).__name__)
def test_get_config_holds_exactly_the_init_arguments(layer):
    base = set(keras.layers.Layer().get_config())
    owner = next(cls for cls in type(layer).__mro__ if "__init__" in vars(cls))  # PatchMerging2x2 has none
    arguments = set()
    if owner.__module__.startswith("keras_vits"):
        arguments = set(inspect.signature(owner.__init__).parameters) - {"self", "kwargs"}
    assert set(layer.get_config()) - base == arguments
    assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()


def test_attention_cores_share_one_base_and_stay_registered_under_their_own_names():
    for cls in (AttentionCore, SpatialReductionAttentionCore, WindowAttentionCore):
        assert issubclass(cls, AttentionCoreBase)
        assert keras.utils.get_registered_name(cls) == f"keras_vits>{cls.__name__}"
    assert AttentionCoreBase not in CUSTOM_LAYERS


def test_only_token_position_and_bias_table_layers_are_excluded_from_weight_decay():
    excluded = {cls for cls in CUSTOM_LAYERS if getattr(cls, "exclude_from_weight_decay", False)}
    assert excluded == {PrependToken, PositionEmbedding, DynamicPositionEmbedding, WindowAttentionCore}


def test_classifier_head_names_its_layers_and_returns_float32_logits():
    inputs = keras.Input((8,), dtype="float16")
    model = keras.Model(inputs, classifier_head(inputs, 3, drop_rate=0.1, name="head_fc", drop_name="head_drop"))
    assert [layer.name for layer in model.layers[1:]] == ["head_drop", "head_fc"]
    assert model(np.zeros((2, 8), np.float16)).dtype == tf.float32
    assert classifier_head(inputs, 0, drop_rate=0.1) is inputs
    named = keras.Model(inputs, classifier_head(inputs, 3, drop_rate=0.1, name="head_dist"))
    assert [layer.name for layer in named.layers[1:]] == ["head_dist_drop", "head_dist"]


def test_prepend_token_puts_the_same_token_first_for_every_sample():
    layer = PrependToken()
    tokens = _tokens(3, 4, 6)
    out = layer(tokens).numpy()
    assert out.shape == (3, 5, 6)
    np.testing.assert_array_equal(out[:, 1:], tokens)
    for sample in out:
        np.testing.assert_array_equal(sample[0], layer.token.numpy()[0, 0])


def test_sincos_tables_follow_the_transformer_formula():
    table = sincos_1d_table(5, 8)
    position, channel = 3, 1
    frequency = 1.0 / 10000 ** (channel / 4)
    assert table[position, channel] == pytest.approx(np.sin(position * frequency), rel=1e-6)
    assert table[position, 4 + channel] == pytest.approx(np.cos(position * frequency), rel=1e-6)
    grid = sincos_2d_table((2, 3), 8)
    assert grid.shape == (6, 8)
    # row-major: tokens 0..2 share the row half, tokens 0 and 3 share the column half
    np.testing.assert_array_equal(grid[0, :4], grid[2, :4])
    np.testing.assert_array_equal(grid[0, 4:], grid[3, 4:])
    with pytest.raises(ValueError, match="even"):
        sincos_1d_table(4, 7)
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_2d_table((2, 2), 6)


def test_fixed_position_embeddings_hold_no_weights_and_zero_prefix_in_2d():
    layer = PositionEmbedding((2, 2), num_prefix_tokens=1, kind="sincos2d")
    tokens = _tokens(1, 5, 8)
    out = layer(tokens).numpy()
    assert layer.weights == []
    np.testing.assert_allclose(out[:, 0], tokens[:, 0])
    np.testing.assert_allclose(out[0, 1:] - tokens[0, 1:], sincos_2d_table((2, 2), 8), atol=1e-6)


def test_position_embedding_rejects_wrong_length_and_kind():
    with pytest.raises(ValueError, match="expects 5 tokens"):
        PositionEmbedding((2, 2), num_prefix_tokens=1)(_tokens(1, 6, 8))
    with pytest.raises(ValueError, match="kind must be one of"):
        PositionEmbedding((2, 2), kind="rotary")


def _numpy_attention(qkv, num_heads):
    batch, length, fused = qkv.shape
    dim = fused // 3
    head_dim = dim // num_heads
    q, k, v = (qkv[..., i * dim : (i + 1) * dim].reshape(batch, length, num_heads, head_dim) for i in range(3))
    scores = np.einsum("bnhd,bmhd->bhnm", q, k) / np.sqrt(head_dim)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    return np.einsum("bhnm,bmhd->bnhd", probs, v).reshape(batch, length, dim)


def test_attention_core_matches_numpy_reference():
    qkv = _tokens(2, 7, 3 * 12)
    layer = AttentionCore(num_heads=3)
    np.testing.assert_allclose(layer(qkv).numpy(), _numpy_attention(qkv, 3), atol=1e-5)
    assert layer.macs_per_image((None, 7, 36)) == 2 * 7 * 7 * 12


def test_attention_core_rejects_a_width_that_does_not_split_into_heads():
    with pytest.raises(ValueError, match="3 \\* num_heads \\* head_dim"):
        AttentionCore(num_heads=5)(_tokens(1, 4, 24))


def test_attention_under_float16_policy_returns_float16_close_to_float32():
    # Scores near float16's range (about 3e4): the result must stay finite and accurate.
    layer = AttentionCore(num_heads=1, dtype="mixed_float16")
    qkv = np.zeros((1, 3, 3), np.float32)
    qkv[0, :, 0] = [180.0, 180.0, 180.0]
    qkv[0, :, 1] = [180.0, -180.0, 0.0]
    qkv[0, :, 2] = [1.0, 2.0, 3.0]
    out = layer(qkv)
    assert out.dtype == tf.float16
    np.testing.assert_allclose(out.numpy().astype(np.float32), _numpy_attention(qkv, 1), atol=1e-2)


def test_drop_path_drops_whole_samples_and_rescales_the_rest():
    tf.random.set_seed(0)
    layer = DropPath(0.5)
    x = np.ones((4000, 3, 2), np.float32)
    np.testing.assert_array_equal(layer(x).numpy(), x)
    out = layer(x, training=True).numpy()
    per_sample = out.reshape(4000, -1)
    assert set(np.unique(per_sample)) <= {0.0, 2.0}
    assert np.all(per_sample.min(1) == per_sample.max(1)), "a sample is dropped whole or kept whole"
    assert abs(per_sample[:, 0].mean() - 1.0) < 0.1
    with pytest.raises(ValueError, match="rate must be in"):
        DropPath(1.0)


def test_layer_scale_multiplies_channels():
    layer = LayerScale(0.5)
    x = _tokens(2, 3, 4)
    np.testing.assert_allclose(layer(x).numpy(), 0.5 * x)
    assert layer.gamma.shape == (4,)


def test_patch_embed_is_a_linear_map_of_row_major_patches():
    images = _tokens(1, 8, 12, 2)
    inputs = keras.Input((8, 12, 2))
    model = keras.Model(inputs, patch_embed(inputs, 4, 5, name="pe"))
    kernel, bias = model.get_layer("pe_proj").get_weights()
    out = model(images).numpy()
    assert out.shape == (1, 6, 5)
    patches = images[0].reshape(2, 4, 3, 4, 2).transpose(0, 2, 1, 3, 4).reshape(6, 4, 4, 2)
    expected = np.einsum("phwc,hwco->po", patches, kernel) + bias
    np.testing.assert_allclose(out[0], expected, atol=1e-5)


def test_patch_embed_is_strict_unless_asked_to_drop_partial_patches():
    inputs = keras.Input((10, 13, 2))
    with pytest.raises(ValueError, match="divisible by patch_size"):
        patch_embed(inputs, 4, 5)
    assert tuple(patch_embed(inputs, 4, 5, strict=False, name="loose").shape) == (None, 2 * 3, 5)


def test_patch_grid_validates_sizes():
    assert patch_grid((224, 320), 16) == (14, 20)
    with pytest.raises(ValueError, match="nearest valid sizes are \\(224, 224\\)"):
        patch_grid(225, 16)
    with pytest.raises(ValueError, match="positive ints"):
        patch_grid(224, 0)


def test_layer_norm_matches_keras_layer_normalization():
    x = _tokens(2, 5, 8) * 3 + 1
    ours = LayerNorm(epsilon=1e-5)
    reference = keras.layers.LayerNormalization(epsilon=1e-5)
    ours(x), reference(x)
    weights = [RNG.normal(size=(8,)).astype("float32"), RNG.normal(size=(8,)).astype("float32")]
    ours.set_weights(weights)
    reference.set_weights(weights)
    np.testing.assert_allclose(ours(x).numpy(), reference(x).numpy(), atol=1e-5)
    assert isinstance(ours, keras.layers.LayerNormalization)
    half = LayerNorm(dtype="mixed_float16")
    assert half(x).dtype == tf.float16 and half.gamma.dtype == tf.float32


@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
def test_layer_norm_training_gradient_matches_autodiff(dtype):
    """The closed-form gradient used in training equals autodiff's, for the input, gamma and beta."""
    x = tf.constant(_tokens(3, 7, 16) * 2 - 0.5)
    initializer = keras.initializers.RandomNormal(mean=1.0, stddev=0.5, seed=1)
    layer = LayerNorm(epsilon=1e-5, dtype=dtype, gamma_initializer=initializer, beta_initializer=initializer)
    layer(x)
    upstream = tf.constant(RNG.normal(size=(3, 7, 16)).astype("float32"))

    def gradients(training):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.cast(layer(x, training=training), tf.float32)
            loss = tf.reduce_sum(y * upstream)
        return tape.gradient(loss, [x, layer.gamma, layer.beta])

    fused, autodiff = gradients(True), gradients(False)
    for ours, reference in zip(fused, autodiff):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(reference), atol=2e-5)
    assert float(tf.reduce_max(tf.abs(fused[0]))) > 0.5  # a gradient of zeros would match nothing


def test_layer_norm_custom_gradient_only_in_training():
    layer = LayerNorm()
    x = tf.constant(_tokens(2, 3, 4))
    inference = tf.function(lambda t: layer(t, training=False))
    training = tf.function(lambda t: layer(t, training=True))
    assert "IdentityN" not in _graph_op_types(inference, x)
    assert "IdentityN" in _graph_op_types(training, x)


def _graph_op_types(function, *args):
    return {op.type for op in function.get_concrete_function(*args).graph.get_operations()}


@pytest.mark.parametrize(
    "kwargs",
    [dict(kernel_size=3), dict(kernel_size=(5, 3), activation="gelu"), dict(kernel_size=3, use_bias=False)],
)
def test_xla_friendly_depthwise_conv_matches_the_stock_layer_under_xla(kwargs):
    images = tf.constant(_tokens(2, 7, 6, 5))
    layer = XlaFriendlyDepthwiseConv2D(padding="same", bias_initializer="random_normal", **kwargs)
    stock = keras.layers.DepthwiseConv2D.from_config(layer.get_config())
    layer.build(images.shape)
    stock.build(images.shape)
    stock.set_weights(layer.get_weights())
    plain = tf.function(lambda x: layer(x))
    compiled = tf.function(lambda x: layer(x), jit_compile=True)
    expected = stock(images).numpy()
    np.testing.assert_allclose(plain(images).numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(compiled(images).numpy(), expected, atol=1e-5)
    # The XLA trace replaces the convolution; the plain graph keeps TensorFlow's kernel (and TFLite's op).
    assert "DepthwiseConv2dNative" in _graph_op_types(plain, images)
    assert "DepthwiseConv2dNative" not in _graph_op_types(compiled, images)


def test_xla_friendly_depthwise_conv_takes_any_batch_and_map_size_under_one_xla_signature():
    layer = XlaFriendlyDepthwiseConv2D(3, padding="same", bias_initializer="random_normal")
    layer.build((None, None, None, 5))
    stock = keras.layers.DepthwiseConv2D.from_config(layer.get_config())
    stock.build((None, None, None, 5))
    stock.set_weights(layer.get_weights())
    compiled = tf.function(lambda x: layer(x), jit_compile=True, input_signature=[tf.TensorSpec([None, None, None, 5])])
    for shape in [(3, 9, 8, 5), (1, 4, 6, 5)]:
        images = tf.constant(_tokens(*shape))
        np.testing.assert_allclose(compiled(images).numpy(), stock(images).numpy(), atol=1e-5)


def test_xla_friendly_depthwise_conv_keeps_the_stock_path_where_shifts_do_not_apply():
    images = tf.constant(_tokens(2, 8, 8, 4))
    layer = XlaFriendlyDepthwiseConv2D(3, strides=2, padding="same")
    compiled = tf.function(lambda x: layer(x), jit_compile=True)
    assert compiled(images).shape == (2, 4, 4, 4)
    assert "DepthwiseConv2dNative" in _graph_op_types(compiled, images)
