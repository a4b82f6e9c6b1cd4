"""Builds an ONNX graph of a sentence-transformers BERT encoder straight from its folder
(config.json + model.safetensors) with numpy and the `onnx` package: no PyTorch, no export.

The graph maps input_ids and attention_mask (int64, batch x seq, right-padded) to
last_hidden_state (float32, batch x seq x hidden); token_type_ids are taken as all 0 (the
token-type-0 embedding is folded into the position table). Position ids are 0..seq-1 (BERT's,
which is also what the multilingual-e5-small-q4dq folder uses).

Two variants:

- fused (default): the graph ONNX Runtime's transformer optimizer
  (`onnxruntime.transformers.optimizer`, model_type bert) leaves, made of com.microsoft
  contrib ops: EmbedLayerNormalization (which also turns the mask into per-row lengths),
  Attention (packed QKV weight hidden x 3*hidden and bias, 1-D mask_index), MatMul,
  SkipLayerNormalization (residual + bias + LayerNorm), BiasGelu (exact erf GELU).
- plain (`--plain`): standard ONNX ops only (Gather, MatMul, Add, LayerNormalization, Softmax,
  Erf, ...), left for ONNX Runtime's own ORT_ENABLE_ALL graph optimizations to fuse.

Opset 17 (+ com.microsoft 1). Used by bench/compare_embed_speed.py; also a CLI:

    /tmp/ortref/bin/python bench/ort_bert_graph.py MODEL_DIR OUT.onnx [--plain]
"""
import argparse
import json
import os
import struct

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
MS = "com.microsoft"


def load_safetensors(path):
    """All tensors of a .safetensors file as float32 numpy arrays (keyed by name)."""
    try:
        from safetensors.numpy import load_file
        tensors = load_file(path)
    except ImportError:  # parse the header by hand: u64 length, JSON, then raw little-endian data
        dtypes = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
            data = f.read()
        tensors = {}
        for name, meta in header.items():
            if name == "__metadata__":
                continue
            start, end = meta["data_offsets"]
            tensors[name] = np.frombuffer(data[start:end], dtype=dtypes[meta["dtype"]]).reshape(meta["shape"])
    return {k: (v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in tensors.items()}


def load_bert(model_dir):
    """(config, weights) with the weight names stripped of any `bert.` / `<model_type>.` prefix."""
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    if config.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"hidden_act {config.get('hidden_act')!r}: only exact (erf) gelu is built")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError("only absolute position embeddings are built")
    raw = load_safetensors(os.path.join(model_dir, "model.safetensors"))
    prefixes = ["bert.", f"{config.get('model_type', 'bert')}.", "model."]
    weights = {}
    for name, tensor in raw.items():
        for p in prefixes:
            if name.startswith(p) and name[len(p):].startswith(("embeddings.", "encoder.")):
                name = name[len(p):]
                break
        weights[name] = tensor
    if "embeddings.word_embeddings.weight" not in weights:
        raise ValueError(f"no embeddings.word_embeddings.weight in {model_dir}: {sorted(raw)[:5]}...")
    return config, weights


class Graph:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def const(self, name, array):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type, inputs, n_out=1, domain=None, **attrs):
        self.n += 1
        outs = [f"{op_type.lower()}_{self.n}_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=f"{op_type}_{self.n}",
                                           domain=domain, **attrs))
        return outs[0] if n_out == 1 else outs


def build(model_dir, plain=False):
    """The onnx.ModelProto of the encoder in `model_dir`."""
    config, w = load_bert(model_dir)
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    layers, eps = config["num_hidden_layers"], float(config.get("layer_norm_eps", 1e-12))
    head_dim = hidden // heads
    g = Graph()

    def wt(name):  # nn.Linear keeps (out, in); MatMul wants (in, out)
        return np.ascontiguousarray(w[name].T)

    word = g.const("word_embeddings", w["embeddings.word_embeddings.weight"])
    pos_table = w["embeddings.position_embeddings.weight"]
    if "embeddings.token_type_embeddings.weight" in w:  # token_type_ids are all 0: fold type 0 in
        pos_table = pos_table + w["embeddings.token_type_embeddings.weight"][0][None, :]
    pos = g.const("position_embeddings", pos_table)
    ln_g = g.const("emb_ln_gamma", w["embeddings.LayerNorm.weight"])
    ln_b = g.const("emb_ln_beta", w["embeddings.LayerNorm.bias"])

    if plain:
        x = g.op("Gather", [word, "input_ids"], axis=0)
        seq = g.op("Gather", [g.op("Shape", ["input_ids"]), g.const("one_idx", np.array([1], np.int64))], axis=0)
        p = g.op("Slice", [pos, g.const("zero_1d", np.array([0], np.int64)), seq,
                           g.const("zero_axis", np.array([0], np.int64))])
        x = g.op("LayerNormalization", [g.op("Add", [x, p]), ln_g, ln_b], axis=-1, epsilon=eps)
        # Additive mask (batch, 1, 1, seq): 0 where attended, -10000 on padding (as BERT).
        m = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
        m = g.op("Mul", [g.op("Sub", [g.const("one_f", np.array(1.0, np.float32)), m]),
                         g.const("neg_big", np.array(-10000.0, np.float32))])
        mask_bias = g.op("Unsqueeze", [m, g.const("mask_axes", np.array([1, 2], np.int64))])
        split_shape = g.const("split_heads", np.array([0, 0, heads, head_dim], np.int64))
        merge_shape = g.const("merge_heads", np.array([0, 0, hidden], np.int64))
        scale = g.const("attn_scale", np.array(1.0 / np.sqrt(head_dim), np.float32))
        sqrt2 = g.const("sqrt2", np.array(np.sqrt(2.0), np.float32))
        one, half = g.const("one_g", np.array(1.0, np.float32)), g.const("half", np.array(0.5, np.float32))
    else:
        ids32 = g.op("Cast", ["input_ids"], to=TensorProto.INT32)
        mask32 = g.op("Cast", ["attention_mask"], to=TensorProto.INT32)
        # Inputs: input_ids, segment_ids (none), word, position, segment (none), gamma, beta, mask.
        x, mask_index = g.op("EmbedLayerNormalization", [ids32, "", word, pos, "", ln_g, ln_b, mask32],
                             n_out=2, domain=MS, epsilon=eps)

    for i in range(layers):
        pre = f"encoder.layer.{i}."
        att = pre + "attention.self."
        c = lambda name, arr: g.const(f"l{i}_{name}", arr)  # noqa: E731
        if plain:
            def proj(kind):
                y = g.op("Add", [g.op("MatMul", [x, c(f"{kind}_w", wt(att + f"{kind}.weight"))]),
                                 c(f"{kind}_b", w[att + f"{kind}.bias"])])
                return g.op("Transpose", [g.op("Reshape", [y, split_shape])], perm=[0, 2, 1, 3])
            q, k, v = proj("query"), proj("key"), proj("value")
            scores = g.op("MatMul", [q, g.op("Transpose", [k], perm=[0, 1, 3, 2])])
            scores = g.op("Add", [g.op("Mul", [scores, scale]), mask_bias])
            ctx = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
            ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge_shape])
            y = g.op("Add", [g.op("MatMul", [ctx, c("ao_w", wt(pre + "attention.output.dense.weight"))]),
                             c("ao_b", w[pre + "attention.output.dense.bias"])])
            x = g.op("LayerNormalization", [g.op("Add", [y, x]), c("ao_ln_g", w[pre + "attention.output.LayerNorm.weight"]),
                                            c("ao_ln_b", w[pre + "attention.output.LayerNorm.bias"])],
                     axis=-1, epsilon=eps)
            h = g.op("Add", [g.op("MatMul", [x, c("in_w", wt(pre + "intermediate.dense.weight"))]),
                             c("in_b", w[pre + "intermediate.dense.bias"])])
            gelu = g.op("Mul", [g.op("Mul", [h, g.op("Add", [g.op("Erf", [g.op("Div", [h, sqrt2])]), one])]), half])
            y = g.op("Add", [g.op("MatMul", [gelu, c("out_w", wt(pre + "output.dense.weight"))]),
                             c("out_b", w[pre + "output.dense.bias"])])
            x = g.op("LayerNormalization", [g.op("Add", [y, x]), c("out_ln_g", w[pre + "output.LayerNorm.weight"]),
                                            c("out_ln_b", w[pre + "output.LayerNorm.bias"])],
                     axis=-1, epsilon=eps)
        else:
            qkv_w = np.concatenate([wt(att + f"{k}.weight") for k in ("query", "key", "value")], axis=1)
            qkv_b = np.concatenate([w[att + f"{k}.bias"] for k in ("query", "key", "value")])
            ctx = g.op("Attention", [x, c("qkv_w", qkv_w), c("qkv_b", qkv_b), mask_index], domain=MS,
                       num_heads=heads)
            y = g.op("MatMul", [ctx, c("ao_w", wt(pre + "attention.output.dense.weight"))])
            # SkipLayerNormalization(input, skip, gamma, beta, bias) = LN(input + skip + bias).
            x = g.op("SkipLayerNormalization", [y, x, c("ao_ln_g", w[pre + "attention.output.LayerNorm.weight"]),
                                                c("ao_ln_b", w[pre + "attention.output.LayerNorm.bias"]),
                                                c("ao_b", w[pre + "attention.output.dense.bias"])],
                     domain=MS, epsilon=eps)
            h = g.op("MatMul", [x, c("in_w", wt(pre + "intermediate.dense.weight"))])
            h = g.op("BiasGelu", [h, c("in_b", w[pre + "intermediate.dense.bias"])], domain=MS)
            y = g.op("MatMul", [h, c("out_w", wt(pre + "output.dense.weight"))])
            x = g.op("SkipLayerNormalization", [y, x, c("out_ln_g", w[pre + "output.LayerNorm.weight"]),
                                                c("out_ln_b", w[pre + "output.LayerNorm.bias"]),
                                                c("out_b", w[pre + "output.dense.bias"])],
                     domain=MS, epsilon=eps)

    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"])
              for n in ("input_ids", "attention_mask")]
    outputs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", hidden])]
    graph = helper.make_graph(g.nodes, "bert_plain" if plain else "bert_fused", inputs, outputs, g.inits)
    opsets = [helper.make_opsetid("", OPSET)] + ([] if plain else [helper.make_opsetid(MS, 1)])
    model = helper.make_model(graph, opset_imports=opsets, producer_name="quarry-bench-ort_bert_graph")
    model.ir_version = 8
    return model


def save(model_dir, out_path, plain=False):
    model = build(model_dir, plain=plain)
    onnx.checker.check_model(model) if plain else None  # the checker does not know contrib ops
    onnx.save(model, out_path)
    return out_path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("out")
    ap.add_argument("--plain", action="store_true", help="standard ONNX ops only")
    args = ap.parse_args()
    save(args.model_dir, args.out, plain=args.plain)
    print(args.out)


if __name__ == "__main__":
    main()
