"""The tensor ops of the layers: `keras.ops` under Keras 3 (any backend), TensorFlow's under tf-keras.

tensorflow-model-optimization takes only tf-keras models, whose layers cannot call
`keras.ops`. So every op a layer needs is named here once, with `keras.ops`'s
signature, and the tf-keras half gives the TensorFlow op behind it. This is the
only module of the layers and models that reaches TensorFlow, and only for three
things: tf-keras, the XLA-context test behind `XlaFriendlyDepthwiseConv2D`, and
the run-time shape check of a graph whose image size is unknown while tracing.
"""

from keras_vits.backend import BACKEND, IS_KERAS_3, keras

#: The closed-form LayerNorm gradient is measured (and used) on TensorFlow only; Keras
#: has no `custom_gradient` for PyTorch, and JAX's XLA fuses autodiff's kernels itself.
FUSED_NORM_GRADIENT = BACKEND == "tensorflow"

if IS_KERAS_3:
    from keras.ops import (  # noqa: F401  (re-exported)
        abs,
        arange,
        broadcast_to,
        cast,
        concatenate,
        convert_to_tensor,
        custom_gradient,
        einsum,
        floor,
        matmul,
        maximum,
        mean,
        pad,
        reshape,
        rsqrt,
        shape,
        softmax,
        split,
        sum,
        take,
        tile,
        transpose,
        where,
        zeros_like,
    )

    def random_uniform(shape, seed_generator):
        """Uniform `[0, 1)` float32 noise of `shape`, drawn from the layer's `keras.random.SeedGenerator`."""
        return keras.random.uniform(shape, seed=seed_generator)

else:
    import tensorflow as tf

    abs = tf.abs
    broadcast_to = tf.broadcast_to
    einsum = tf.einsum
    floor = tf.floor
    maximum = tf.maximum
    reshape = tf.reshape
    rsqrt = tf.math.rsqrt
    tile = tf.tile
    where = tf.where
    zeros_like = tf.zeros_like
    custom_gradient = tf.custom_gradient

    def arange(stop, dtype="int32"):
        return tf.range(stop, dtype=dtype)

    def cast(x, dtype):
        return tf.cast(x, dtype)

    def concatenate(xs, axis=0):
        return tf.concat(xs, axis=axis)

    def convert_to_tensor(x, dtype=None):
        return tf.convert_to_tensor(x, dtype=dtype)

    def matmul(a, b):
        return tf.matmul(a, b)

    def mean(x, axis=None, keepdims=False):
        return tf.reduce_mean(x, axis=axis, keepdims=keepdims)

    def pad(x, pad_width):
        return tf.pad(x, pad_width)

    def shape(x):
        static, dynamic = x.shape, tf.shape(x)
        return tuple(dynamic[i] if dim is None else dim for i, dim in enumerate(static))

    def softmax(x, axis=-1):
        return tf.nn.softmax(x, axis=axis)

    def split(x, indices_or_sections, axis=0):
        return tf.split(x, indices_or_sections, axis=axis)

    def sum(x, axis=None, keepdims=False):
        return tf.reduce_sum(x, axis=axis, keepdims=keepdims)

    def take(x, indices, axis=None):
        return tf.gather(x, indices, axis=axis)

    def transpose(x, axes=None):
        return tf.transpose(x, axes)

    def random_uniform(shape, seed_generator):
        del seed_generator  # tf-keras layers draw from TensorFlow's global generator
        return tf.random.uniform(shape, dtype=tf.float32)


def new_seed_generator(seed=None):
    """A `keras.random.SeedGenerator` for a layer's random ops under Keras 3; None under tf-keras."""
    return keras.random.SeedGenerator(seed) if IS_KERAS_3 else None


def in_xla_context():
    """True while TensorFlow traces inside an XLA-compiled function (`jit_compile=True`), else False.

    Always False on JAX and PyTorch. TensorFlow exposes this only through a private
    module, the check its own control-flow ops use; without it the answer is False,
    which only costs speed.
    """
    if BACKEND != "tensorflow":
        return False
    import tensorflow as tf

    try:
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # pragma: no cover - a TensorFlow that moved the module
        return False
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def checked_grid(image_size, patch_size, message):
    """`image_size // patch_size` per axis, where `image_size` holds run-time (TensorFlow) sizes.

    Only a TensorFlow graph traced with an unknown image size gets here (JAX and PyTorch
    trace with concrete shapes), so the run-time check is TensorFlow's assert.

    Args:
        image_size: `(H, W)`, scalar int tensors.
        patch_size: `(ph, pw)` ints.
        message: what the failing assert says.

    Returns: `(h, w)`, scalar int tensors.
    """
    import tensorflow as tf

    size = tf.stack([tf.cast(s, tf.int32) for s in image_size])
    patch = tf.constant(patch_size, tf.int32)
    check = tf.debugging.assert_equal(size % patch, tf.zeros_like(patch), message=message)
    with tf.control_dependencies([check]):
        return tuple(tf.unstack(size // patch))
