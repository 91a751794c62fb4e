"""Fine-tuning: each model's layer depths, the layer-decay optimizer, `trainable` and the head's re-initialisation."""

import pytest
from harness import TINY_FAMILIES, tiny_model

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
