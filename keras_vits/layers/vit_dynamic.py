"""Plain-ViT layers for any input size and for dense prediction: what Keras has no layer for.

`DynamicPositionEmbedding` resizes a learned position embedding to each call's
patch grid (ViT and DeiT with `dynamic_img_size=True`); `SliceTokens` and
`TokensToMap` cut a token sequence whose length may be unknown until run time,
and lay patch tokens out as an NHWC map (`features_only`).
"""

from keras_vits import ops
from keras_vits.backend import keras, register_serializable
from keras_vits.layers.helpers import to_2tuple
from keras_vits.layers.tokens import PositionEmbedding
from keras_vits.weights.resample import resample_abs_pos_embed_in_graph


@register_serializable
class DynamicPositionEmbedding(PositionEmbedding):
    """A learned position embedding resized inside the graph to the grid of each call's images.

    The weight is stored at `grid_size` (timm's layout, so checkpoints load as for
    `PositionEmbedding`) and resized with the antialiased bicubic used at load time
    (`weights.resample.resample_abs_pos_embed_in_graph`); at the stored grid it is added as is.

    Args:
        grid_size: `(h, w)` of the stored embedding.
        patch_size: int or `(ph, pw)`; the call's grid is `(H // ph, W // pw)`.
        num_prefix_tokens: class and distillation tokens, kept as they are. Defaults to 1.
        kind: `"learned"` only (a fixed sin-cos table has no size to resample from). Defaults to `"learned"`.
        temperature: unused; kept for `PositionEmbedding`'s config. Defaults to 10000.

    Shapes: `[(B, P + h' * w', C) tokens, (B, H, W, in_chans) images]` -> `(B, P + h' * w', C)`.
    `H` and `W` must be multiples of the patch (checked at run time too).
    """

    def __init__(self, grid_size, patch_size, num_prefix_tokens=1, kind="learned", temperature=10000.0, **kwargs):
        if kind != "learned":
            raise ValueError(
                f"DynamicPositionEmbedding resamples a learned embedding; got kind={kind!r}, expected 'learned'."
            )
        super().__init__(grid_size, num_prefix_tokens=num_prefix_tokens, kind=kind, temperature=temperature, **kwargs)
        self.patch_size = to_2tuple(patch_size, "patch_size")

    def build(self, input_shape):
        token_shape = tuple(input_shape[0])  # the stored length, whatever grid the first call has
        super().build((token_shape[0], self.num_prefix_tokens + self.grid_size[0] * self.grid_size[1], token_shape[2]))

    def call(self, inputs):
        tokens, images = inputs
        static = tuple(images.shape[1:3])
        if None not in static:  # known while tracing: checked here, and a stored-size call adds no op
            if static[0] % self.patch_size[0] or static[1] % self.patch_size[1]:
                raise ValueError(
                    f"dynamic_img_size: image height and width must be multiples of the patch "
                    f"{self.patch_size}, got images of shape {tuple(images.shape)}."
                )
            grid = (static[0] // self.patch_size[0], static[1] // self.patch_size[1])
        else:  # a TensorFlow graph traced for any image size
            message = f"dynamic_img_size: image height and width must be multiples of the patch {self.patch_size}"
            grid = ops.checked_grid(ops.shape(images)[1:3], self.patch_size, message)
        embedding = resample_abs_pos_embed_in_graph(self.embedding, grid, self.num_prefix_tokens, self.grid_size)
        return tokens + ops.cast(embedding, tokens.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        config = super().get_config()
        config.update(patch_size=self.patch_size)
        return config


@register_serializable
class SliceTokens(keras.layers.Layer):
    """`tokens[:, start:stop]`, also for sequences whose length is known only at run time.

    Args:
        start: first token kept. Defaults to 0.
        stop: one past the last token kept; None keeps the rest. Defaults to None.

    Shapes: `(B, N, C)` -> `(B, stop - start, C)` (`N - start` when `stop` is None).
    """

    def __init__(self, start=0, stop=None, **kwargs):
        super().__init__(**kwargs)
        if (
            not isinstance(start, int)
            or start < 0
            or (stop is not None and (not isinstance(stop, int) or stop <= start))
        ):
            raise ValueError(f"SliceTokens needs ints 0 <= start < stop (stop may be None), got {start!r}, {stop!r}.")
        self.start, self.stop = start, stop

    def call(self, tokens):
        return tokens[:, self.start : self.stop]

    def compute_output_shape(self, input_shape):
        length = input_shape[1]
        if self.stop is not None:
            length = self.stop - self.start
        elif length is not None:
            length = length - self.start
        return (input_shape[0], length, input_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update(start=self.start, stop=self.stop)
        return config


@register_serializable
class TokensToMap(keras.layers.Layer):
    """Patch tokens as an NHWC map on the patch grid of the images, prefix tokens dropped.

    Args:
        patch_size: int or `(ph, pw)`; the grid is `(H // ph, W // pw)`.
        num_prefix_tokens: tokens before the patches (class, distillation), dropped. Defaults to 1.

    Shapes: `[(B, P + h * w, C) tokens, (B, H, W, in_chans) images]` -> `(B, h, w, C)`;
    only the images' height and width are read (static where known).
    """

    def __init__(self, patch_size, num_prefix_tokens=1, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = to_2tuple(patch_size, "patch_size")
        self.num_prefix_tokens = int(num_prefix_tokens)

    def _grid(self, image_shape):
        return tuple(None if s is None else s // p for s, p in zip(image_shape[1:3], self.patch_size))

    def call(self, inputs):
        tokens, images = inputs
        image_height, image_width = ops.shape(images)[1:3]
        height, width = image_height // self.patch_size[0], image_width // self.patch_size[1]
        patches = tokens[:, self.num_prefix_tokens :]
        return ops.reshape(patches, [-1, height, width, tokens.shape[-1]])

    def compute_output_shape(self, input_shape):
        tokens, images = (tuple(shape) for shape in input_shape)
        return (tokens[0], *self._grid(images), tokens[2])

    def get_config(self):
        config = super().get_config()
        config.update(patch_size=self.patch_size, num_prefix_tokens=self.num_prefix_tokens)
        return config
