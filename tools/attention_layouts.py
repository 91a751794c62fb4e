"""The attention core alone, in the layouts we considered, in TF's graph and under XLA.

    python tools/attention_layouts.py [--shapes 1x3 16x3 16x6] [--repeats 7]

Each shape is `BATCHxHEADS` with 197 tokens and head width 64 (ViT-Ti has 3 heads,
ViT-S 6). From a fused `(B, N, 3C)` qkv tensor to the merged `(B, N, C)` output:
- package: `keras_vits.layers.attention` (split, reshape and transpose each of q, k, v);
- one_transpose: one 5-D transpose of qkv to `(3, B, heads, N, d)`, then unstack;
- k_pretransposed: k transposed straight to `(B, heads, d, N)`, so `q @ k` needs no transpose flag;
- einsum: `tf.einsum` on `(B, N, heads, d)` without explicit transposes.
Also the two batched products alone against one 2-D matmul of the same FLOPs, which
shows what the batched kernel costs. Medians of alternating repetitions, ms per call.
"""

# isort: off
import keras_vits  # noqa: F401 - first, so TensorFlow loads with oneDNN on (keras_vits/_onednn.py)
# isort: on

import argparse

import numpy as np
import tensorflow as tf

from keras_vits.inference import alternating_medians
from keras_vits.layers.attention import attend, merge_heads, split_fused_qkv

TOKENS, HEAD_DIM = 197, 64


def layouts(heads):
    dim = heads * HEAD_DIM

    def package(qkv):
        return merge_heads(attend(*split_fused_qkv(qkv, heads)))

    def softmax_core(query, key_t, value):
        probs = tf.nn.softmax(tf.matmul(query * HEAD_DIM**-0.5, key_t), axis=-1)
        return merge_heads(tf.matmul(probs, value))

    def one_transpose(qkv):
        query, key, value = tf.unstack(tf.transpose(tf.reshape(qkv, [-1, TOKENS, 3, heads, HEAD_DIM]), [2, 0, 3, 1, 4]))
        return softmax_core(query, tf.transpose(key, [0, 1, 3, 2]), value)

    def k_pretransposed(qkv):
        query, key, value = tf.split(qkv, 3, axis=-1)

        def split(t, order):
            return tf.transpose(tf.reshape(t, [-1, TOKENS, heads, HEAD_DIM]), order)

        return softmax_core(split(query, [0, 2, 1, 3]), split(key, [0, 2, 3, 1]), split(value, [0, 2, 1, 3]))

    def einsum(qkv):
        query, key, value = [tf.reshape(t, [-1, TOKENS, heads, HEAD_DIM]) for t in tf.split(qkv, 3, axis=-1)]
        probs = tf.nn.softmax(tf.einsum("bnhd,bmhd->bhnm", query * HEAD_DIM**-0.5, key), axis=-1)
        return tf.reshape(tf.einsum("bhnm,bmhd->bnhd", probs, value), [-1, TOKENS, dim])

    return dict(package=package, one_transpose=one_transpose, k_pretransposed=k_pretransposed, einsum=einsum)


def batched_scores(query):
    return tf.matmul(query, query, transpose_b=True)


def same_flops_matmul(flat, query):
    return tf.matmul(flat, query[0], transpose_b=True)


def bound(function, *args):
    """`function` with its arguments captured, to trace without inputs (the tensors become captures)."""
    return lambda: function(*args)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="+", default=["1x3", "16x3", "16x6"])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print("| batch x heads | variant | graph ms | XLA ms | vs package in the graph |\n|---|---|---|---|---|")
    for text in args.shapes:
        batch, heads = (int(part) for part in text.split("x"))
        qkv = tf.random.stateless_normal([batch, TOKENS, 3 * heads * HEAD_DIM], seed=(0, 0))
        variants = layouts(heads)
        functions = {}
        for name, layout in variants.items():
            functions[name, "graph"] = tf.function(bound(layout, qkv))
            functions[name, "xla"] = tf.function(bound(layout, qkv), jit_compile=True)
        expected = functions["package", "graph"]().numpy()
        for function in functions.values():
            np.testing.assert_allclose(function().numpy(), expected, atol=1e-4)
        # The products alone: (B*heads) 197x64 @ 64x197, and a 2-D matmul of the same FLOPs.
        query = tf.random.stateless_normal([batch * heads, TOKENS, HEAD_DIM], seed=(1, 0))
        flat = tf.reshape(query, [-1, HEAD_DIM])
        functions["batched q @ k^T", "graph"] = tf.function(bound(batched_scores, query))
        functions["2-D matmul, same FLOPs", "graph"] = tf.function(bound(same_flops_matmul, flat, query))
        ms = {key: 1e3 * value for key, value in alternating_medians(functions, args.repeats, calls=5).items()}
        base = ms["package", "graph"]
        for name in variants:
            graph, xla = ms[name, "graph"], ms[name, "xla"]
            print(f"| {text} | {name} | {graph:.2f} | {xla:.2f} | {base / graph:.2f}x |")
        flops = 2 * batch * heads * TOKENS * TOKENS * HEAD_DIM
        for name in ("batched q @ k^T", "2-D matmul, same FLOPs"):
            print(f"| {text} | {name} | {ms[name, 'graph']:.2f} ({flops / ms[name, 'graph'] / 1e6:.0f} GFLOP/s) | | |")


if __name__ == "__main__":
    main()
