"""Pretrained weights: safetensors reading, per-family key maps, resampling, strict assignment."""

from keras_vits.weights.loader import (
    load_timm_weights,
    map_state_dict,
    read_safetensors,
)
from keras_vits.weights.resample import (
    resample_abs_pos_embed,
    resample_pos_embed,
    resample_pos_embed_bilinear,
    resample_relative_position_bias_table,
    resize_grid,
)
from keras_vits.weights.weight_map import WeightMap, guess_family
