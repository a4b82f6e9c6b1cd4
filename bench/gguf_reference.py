"""A plain float64 forward pass over a GGUF file's dequantized weights, for `compare_logits.py`.

Quarry and llama.cpp both quantize activations (Q8_0/Q8_K) before every quantized product and
round differently along the way (llama.cpp's GELU is an f16 table, its cache f16 by default),
so on real weights their logits part by a small, chaotic amount that neither side "owns". This
module computes what the quantized weights give without any of that: weights expanded by
gguf-py, every activation in float64, exact tanh-GELU and softmax. Comparing each
implementation with it tells which one is nearer the model and how far apart two correct
implementations can be.

Covers the architectures of the real files we test: `qwen2` (projection biases, NeoX rotary)
and `gemma3` (embedding scaled by sqrt(hidden), per-head q/k RMS norm, post-attention and
post-FFN norms, tanh-GELU, local layers with rope base 10k and a sliding window, every sixth
layer global). Needs numpy and gguf (gguf-py) in the throwaway virtualenv.
"""
import numpy as np


def _meta(reader, key, default=None):
    field = reader.fields.get(key)
    if field is None or not field.data:
        return default
    value = field.parts[field.data[0]]
    return value.tolist()[0] if len(value) == 1 else value.tolist()


class Weights:
    def __init__(self, path):
        from gguf import GGUFReader
        from gguf.quants import dequantize

        self.reader = GGUFReader(str(path))
        self._dequantize = dequantize
        self.tensors = {t.name: t for t in self.reader.tensors}
        self.arch = bytes(self.reader.fields["general.architecture"].parts[-1]).decode()

    def meta(self, key, default=None):
        return _meta(self.reader, f"{self.arch}.{key}", default)

    def get(self, name):
        """The tensor in numpy order (out, in) for matrices, as float64."""
        t = self.tensors.get(name)
        if t is None:
            return None
        return self._dequantize(t.data, t.tensor_type).astype(np.float64)


def _rms_norm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def _rope_neox(x, positions, base):
    """x: (tokens, heads, dim), rotating the two halves (NeoX layout, llama.cpp's rope type 2)."""
    d = x.shape[-1]
    inv = base ** (-np.arange(0, d, 2, dtype=np.float64) / d)
    ang = positions[:, None].astype(np.float64) * inv[None, :]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    a, b = x[..., : d // 2], x[..., d // 2:]
    return np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1)


def _attention(q, k, v, scale, window=None):
    """q: (T, H, D), k/v: (T, KV, D); causal, grouped-query, optional sliding window."""
    t, n_head, _ = q.shape
    group = n_head // k.shape[1]
    pos = np.arange(t)
    hidden = pos[None, :] > pos[:, None]
    if window is not None:
        hidden |= pos[None, :] <= pos[:, None] - window
    out = np.empty((t, n_head, v.shape[-1]))
    for h in range(n_head):
        s = (q[:, h, :] @ k[:, h // group, :].T) * scale
        s[hidden] = -np.inf
        s -= s.max(1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(1, keepdims=True)
        out[:, h, :] = p @ v[:, h // group, :]
    return out.reshape(t, -1)


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def _linear(w, x, b=None):
    y = x @ w.T
    return y if b is None else y + b


def logits(path, tokens):
    """Teacher-forced logits (positions x vocabulary, float64) for `tokens`."""
    w = Weights(path)
    if w.arch not in ("qwen2", "gemma3"):
        raise SystemExit(f"gguf_reference: no float64 reference for architecture {w.arch}")
    n_layer = w.meta("block_count")
    n_head = w.meta("attention.head_count")
    n_kv = w.meta("attention.head_count_kv")
    hidden = w.meta("embedding_length")
    eps = w.meta("attention.layer_norm_rms_epsilon")
    head_dim = w.meta("attention.key_length", hidden // n_head)
    base = w.meta("rope.freq_base", 10000.0)
    ids = np.asarray(tokens)
    positions = np.arange(len(ids))
    embd = w.get("token_embd.weight")
    x = embd[ids]
    gemma = w.arch == "gemma3"
    if gemma:
        x = x * np.sqrt(hidden)
        window = w.meta("attention.sliding_window")
        local_base = w.meta("rope.local_freq_base", 10000.0)
    # Gemma 3 scales queries by query_pre_attn_scalar^-0.5, which is head_dim^-0.5 except at 27B
    # (llama.cpp's f_attention_scale).
    scale = 1.0 / np.sqrt(head_dim)
    for il in range(n_layer):
        p = f"blk.{il}."
        h = _rms_norm(x, w.get(p + "attn_norm.weight"), eps)
        q = _linear(w.get(p + "attn_q.weight"), h, w.get(p + "attn_q.bias")).reshape(len(ids), n_head, head_dim)
        k = _linear(w.get(p + "attn_k.weight"), h, w.get(p + "attn_k.bias")).reshape(len(ids), n_kv, head_dim)
        v = _linear(w.get(p + "attn_v.weight"), h, w.get(p + "attn_v.bias")).reshape(len(ids), n_kv, head_dim)
        layer_window, layer_base = None, base
        if gemma:
            q = _rms_norm(q, w.get(p + "attn_q_norm.weight"), eps)
            k = _rms_norm(k, w.get(p + "attn_k_norm.weight"), eps)
            if (il + 1) % 6 != 0:  # llama.cpp: swa pattern 6, the sixth layer global
                layer_window, layer_base = window, local_base
        q, k = _rope_neox(q, positions, layer_base), _rope_neox(k, positions, layer_base)
        a = _linear(w.get(p + "attn_output.weight"), _attention(q, k, v, scale, layer_window))
        if gemma:
            a = _rms_norm(a, w.get(p + "post_attention_norm.weight"), eps)
        x = x + a
        h = _rms_norm(x, w.get(p + "ffn_norm.weight"), eps)
        gate, up = _linear(w.get(p + "ffn_gate.weight"), h), _linear(w.get(p + "ffn_up.weight"), h)
        act = _gelu_tanh(gate) if gemma else gate / (1.0 + np.exp(-gate))
        f = _linear(w.get(p + "ffn_down.weight"), act * up)
        if gemma:
            f = _rms_norm(f, w.get(p + "post_ffw_norm.weight"), eps)
        x = x + f
    x = _rms_norm(x, w.get("output_norm.weight"), eps)
    out = w.get("output.weight")
    return _linear(embd if out is None else out, x)
