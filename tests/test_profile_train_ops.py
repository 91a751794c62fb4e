"""tools/benchmarks/profile_train_ops.py: both frameworks' ops land in the same kinds of work, and our side profiles."""

import importlib.util
import pathlib
import sys

_TOOLS = pathlib.Path(__file__).parents[1] / "tools" / "benchmarks"
sys.path.insert(0, str(_TOOLS))  # the script imports its sibling profile_ops.py, as when run from tools/benchmarks/
_SPEC = importlib.util.spec_from_file_location("profile_train_ops", _TOOLS / "profile_train_ops.py")
profile_train_ops = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(profile_train_ops)


def test_op_names_of_both_frameworks_map_to_the_same_kinds():
    kinds = {
        "_MklBatchMatMulV2": "attention",  # contains "MatMul": the attention rule must come first
        "Softmax": "attention",
        "aten::_scaled_dot_product_flash_attention_for_cpu_backward": "attention",
        "aten::_softmax_backward_data": "attention",
        "aten::bmm": "attention",
        "_MklMatMul": "dense matmul + conv",
        "_MklNativeFusedMatMul": "dense matmul + conv",
        "Conv2DBackpropFilter": "dense matmul + conv",
        "DepthwiseConv2dNative": "dense matmul + conv",
        "aten::mm": "dense matmul + conv",
        "aten::addmm": "dense matmul + conv",
        "aten::convolution_backward": "dense matmul + conv",
        "aten::native_layer_norm_backward": "other",
        "Mul": "other",
    }
    assert {op: profile_train_ops.work_kind(op) for op in kinds} == kinds
    summed = profile_train_ops.kind_milliseconds({"_MklMatMul": 2.0, "aten::mm": 1.5, "Mul": 0.5, "Softmax": 0.25})
    assert summed == {"dense matmul + conv": 3.5, "other": 0.5, "attention": 0.25}


def test_tensorflow_side_profiles_a_tiny_model():
    from keras_vits.registry import create_model

    model = create_model(
        "vit_tiny_patch16_224", image_size=32, patch_size=16, embed_dim=32, depth=1, num_heads=2, num_classes=4
    )
    milliseconds, counts, walls = profile_train_ops.tensorflow_op_milliseconds(model, (2, 32, 32, 3), runs=2)
    assert len(walls) == 2 and all(wall > 0 for wall in walls)
    assert set(milliseconds) == set(counts)
    kinds = profile_train_ops.kind_milliseconds(milliseconds)
    assert kinds.get("dense matmul + conv", 0) > 0 and kinds.get("attention", 0) > 0


def test_tensorflow_side_feeds_the_tensors_a_model_closes_over():
    """Swin's relative position index is captured by the traced function: the session must be fed it."""
    from keras_vits import SwinTransformer

    model = SwinTransformer(
        image_size=32, patch_size=4, embed_dim=16, depths=(2,), num_heads=(1,), window_size=4, num_classes=4
    )
    milliseconds, _, _ = profile_train_ops.tensorflow_op_milliseconds(model, (2, 32, 32, 3), runs=1)
    assert any("Gather" in op for op in milliseconds)
