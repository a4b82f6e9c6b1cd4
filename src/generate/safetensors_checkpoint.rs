//! Hugging Face checkpoints (a folder with `config.json`, `model.safetensors` or its shards,
//! and `tokenizer.json`) of the families Quarry's llama-family module runs (`llama`,
//! `mistral`, `qwen2`, `qwen3`), read in full precision: weights in bf16/f16/f32 are held as
//! f32, so a model needs four bytes per weight, and its logits are those of transformers.
//! The tensors are served to `llama_family.rs` under the names llama.cpp's converter would
//! give them; Hugging Face checkpoints rotate NeoX-style, so the converter's q/k permutation
//! for GGUF `llama` is not needed.

use std::path::{Path, PathBuf};

use candle_core::safetensors::Load;
use candle_core::{DType, Device, Result};
use safetensors::SafeTensors;
use serde::Deserialize;

use super::attention::{Shape, llama3_rope_factors};
use super::linear::Weight;
use super::llama_family::{FamilyConfig, TensorSource};

/// The fields of `config.json` the module reads.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct HfConfig {
    pub(crate) model_type: String,
    hidden_size: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    num_hidden_layers: usize,
    rms_norm_eps: f64,
    #[serde(default = "default_rope_theta")]
    rope_theta: f32,
    #[serde(default = "default_positions")]
    max_position_embeddings: usize,
    head_dim: Option<usize>,
    rope_scaling: Option<RopeScaling>,
    /// Mistral's sliding window; the module attends to every position, so context stops there.
    sliding_window: Option<usize>,
    /// Whether `sliding_window` applies (Qwen2 configs name a window they do not use).
    use_sliding_window: Option<bool>,
    #[serde(default)]
    pub(crate) eos_token_id: TokenIds,
    #[serde(default)]
    pub(crate) bos_token_id: TokenIds,
}

fn default_rope_theta() -> f32 {
    10_000.0
}

fn default_positions() -> usize {
    2048
}

/// A token id, a list of them, or none (`config.json` writes all three).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(untagged)]
pub(crate) enum TokenIds {
    One(u32),
    Many(Vec<u32>),
    #[default]
    None,
}

impl TokenIds {
    pub(crate) fn ids(&self) -> Vec<u32> {
        match self {
            Self::One(id) => vec![*id],
            Self::Many(ids) => ids.clone(),
            Self::None => Vec::new(),
        }
    }
}

/// Llama 3.1+'s long-context rotary scaling.
#[derive(Debug, Clone, Deserialize)]
struct RopeScaling {
    rope_type: Option<String>,
    /// The older name of `rope_type`; transformers writes both when it re-saves a config.
    #[serde(rename = "type")]
    legacy_type: Option<String>,
    factor: Option<f32>,
    low_freq_factor: Option<f32>,
    high_freq_factor: Option<f32>,
    original_max_position_embeddings: Option<f32>,
}

/// The GGUF architecture the module runs a `model_type` as.
pub(crate) fn architecture_of(model_type: &str) -> Option<&'static str> {
    match model_type {
        "llama" | "mistral" => Some("llama"),
        "qwen2" => Some("qwen2"),
        "qwen3" => Some("qwen3"),
        _ => None,
    }
}

impl HfConfig {
    /// Reads `dir/config.json`.
    pub(crate) fn read(dir: &Path) -> std::result::Result<Self, String> {
        let path = dir.join("config.json");
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The module's configuration, or why the checkpoint cannot run.
    pub(crate) fn family(&self) -> std::result::Result<FamilyConfig, String> {
        let arch = architecture_of(&self.model_type).ok_or_else(|| {
            format!("model_type \"{}\" is not one Quarry runs from safetensors", self.model_type)
        })?;
        if self.num_attention_heads == 0 || self.num_hidden_layers == 0 {
            return Err("config.json has no attention heads or no layers".into());
        }
        let head_dim = self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads);
        let rope_type = |s: &RopeScaling| s.rope_type.clone().or_else(|| s.legacy_type.clone());
        let rope_factors = match &self.rope_scaling {
            Some(s) if rope_type(s).as_deref() == Some("llama3") => Some(llama3_rope_factors(
                head_dim,
                self.rope_theta,
                s.factor.unwrap_or(8.0),
                s.low_freq_factor.unwrap_or(1.0),
                s.high_freq_factor.unwrap_or(4.0),
                s.original_max_position_embeddings.unwrap_or(8192.0),
            )),
            Some(s) if rope_type(s).is_some_and(|t| t != "default") => {
                return Err(format!(
                    "rope_scaling of type {:?} is not supported",
                    rope_type(s).unwrap_or_default()
                ));
            }
            _ => None,
        };
        let window_applies = self.use_sliding_window.unwrap_or(self.model_type == "mistral");
        let context = match self.sliding_window {
            Some(window) if window > 0 && window_applies => {
                self.max_position_embeddings.min(window)
            }
            _ => self.max_position_embeddings,
        };
        Ok(FamilyConfig {
            arch: arch.to_owned(),
            shape: Shape {
                n_head: self.num_attention_heads,
                n_kv_head: self.num_key_value_heads.unwrap_or(self.num_attention_heads),
                n_layers: self.num_hidden_layers,
                hidden: self.hidden_size,
                head_dim,
                eps: self.rms_norm_eps,
                context,
            },
            rope_base: self.rope_theta,
            rope_factors,
            neox: true,
        })
    }
}

/// The safetensors files of a checkpoint folder: `model.safetensors`, or the shards its
/// `model.safetensors.index.json` lists.
pub(crate) fn weight_files(dir: &Path) -> std::result::Result<Vec<PathBuf>, String> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    let bytes =
        std::fs::read(&index).map_err(|_| format!("{} has no model.safetensors", dir.display()))?;
    let json: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", index.display()))?;
    let mut files: Vec<PathBuf> = json["weight_map"]
        .as_object()
        .ok_or_else(|| format!("{} has no weight_map", index.display()))?
        .values()
        .filter_map(|v| v.as_str().map(|f| dir.join(f)))
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

/// Number of weights and the storage type of the largest tensor, from the files' headers
/// alone (the 8-byte length and the JSON table before the data), for `models list`.
pub(crate) fn header_summary(files: &[PathBuf]) -> std::result::Result<(u64, String), String> {
    use std::io::Read;
    let (mut parameters, mut largest, mut dtype) = (0u64, 0u64, String::new());
    for path in files {
        let fail = |e: String| format!("{}: not a readable safetensors file: {e}", path.display());
        let mut file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
        let mut len = [0u8; 8];
        file.read_exact(&mut len).map_err(|e| fail(e.to_string()))?;
        let len = u64::from_le_bytes(len);
        if len > 100_000_000 {
            return Err(fail(format!("a header of {len} bytes")));
        }
        let mut header = vec![0u8; len as usize];
        file.read_exact(&mut header).map_err(|e| fail(e.to_string()))?;
        let table: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&header).map_err(|e| fail(e.to_string()))?;
        for (name, info) in table {
            if name == "__metadata__" {
                continue;
            }
            let n: u64 = info["shape"]
                .as_array()
                .map(|dims| dims.iter().filter_map(|d| d.as_u64()).product())
                .unwrap_or(0);
            parameters += n;
            if n > largest {
                largest = n;
                dtype = info["dtype"].as_str().unwrap_or_default().to_owned();
            }
        }
    }
    Ok((parameters, dtype))
}

/// The Hugging Face name of a tensor llama.cpp's converter calls `name`.
pub(crate) fn hf_name(name: &str) -> Option<String> {
    match name {
        "token_embd.weight" => return Some("model.embed_tokens.weight".into()),
        "output.weight" => return Some("lm_head.weight".into()),
        "output_norm.weight" => return Some("model.norm.weight".into()),
        _ => {}
    }
    let rest = name.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let (part, suffix) = rest.rsplit_once('.')?;
    let hf = match part {
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "attn_q_norm" => "self_attn.q_norm",
        "attn_k_norm" => "self_attn.k_norm",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.{suffix}"))
}

/// The tensors of a safetensors checkpoint, read into memory (the files' bytes, dropped once
/// the model is built) and expanded to f32 one at a time when asked for.
pub(crate) struct SafetensorsTensors {
    files: Vec<Vec<u8>>,
    /// Tensor name → index in `files`.
    names: std::collections::HashMap<String, usize>,
    device: Device,
    /// The output layer reuses the embedding table: the checkpoint has no `lm_head`.
    tied: bool,
}

fn header_error(path: &Path, e: safetensors::SafeTensorError) -> candle_core::Error {
    candle_core::Error::Msg(format!("{}: not a readable safetensors file: {e}", path.display()))
}

impl SafetensorsTensors {
    pub(crate) fn open(paths: &[PathBuf], device: &Device) -> Result<Self> {
        let mut files = Vec::with_capacity(paths.len());
        let mut names = std::collections::HashMap::new();
        for (idx, path) in paths.iter().enumerate() {
            let bytes = std::fs::read(path)
                .map_err(|e| candle_core::Error::Msg(format!("{}: {e}", path.display())))?;
            let st = SafeTensors::deserialize(&bytes).map_err(|e| header_error(path, e))?;
            names.extend(st.names().into_iter().map(|n| (n.to_owned(), idx)));
            files.push(bytes);
        }
        let tied = !names.contains_key("lm_head.weight");
        Ok(Self { files, names, device: device.clone(), tied })
    }

    fn load(&self, name: &str) -> Result<candle_core::Tensor> {
        let hf = hf_name(name)
            .ok_or_else(|| candle_core::Error::Msg(format!("no Hugging Face name for {name}")))?;
        let Some(&idx) = self.names.get(&hf) else {
            candle_core::bail!("the checkpoint has no tensor {hf}");
        };
        let st = SafeTensors::deserialize(&self.files[idx])
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let view = st.tensor(&hf).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        view.load(&self.device)?.to_dtype(DType::F32)
    }
}

impl TensorSource for SafetensorsTensors {
    fn has(&self, name: &str) -> bool {
        if name == "output.weight" && self.tied {
            return false;
        }
        hf_name(name).is_some_and(|hf| self.names.contains_key(&hf))
    }

    fn matrix(&mut self, name: &str) -> Result<Weight> {
        Ok(Weight::Dense(self.load(name)?))
    }

    fn vector(&mut self, name: &str) -> Result<Vec<f32>> {
        self.load(name)?.flatten_all()?.to_vec1()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_llama_cpp_names_to_hugging_face_names() {
        assert_eq!(
            hf_name("blk.3.attn_q.weight").as_deref(),
            Some("model.layers.3.self_attn.q_proj.weight")
        );
        assert_eq!(
            hf_name("blk.12.attn_v.bias").as_deref(),
            Some("model.layers.12.self_attn.v_proj.bias")
        );
        assert_eq!(
            hf_name("blk.0.ffn_norm.weight").as_deref(),
            Some("model.layers.0.post_attention_layernorm.weight")
        );
        assert_eq!(
            hf_name("blk.1.attn_k_norm.weight").as_deref(),
            Some("model.layers.1.self_attn.k_norm.weight")
        );
        assert_eq!(hf_name("output_norm.weight").as_deref(), Some("model.norm.weight"));
        assert_eq!(hf_name("rope_freqs.weight"), None);
        assert_eq!(hf_name("blk.0.unknown.weight"), None);
    }

    #[test]
    fn reads_a_llama3_config_with_its_rope_scaling() {
        let json = r#"{"model_type": "llama", "hidden_size": 2048, "num_attention_heads": 32,
            "num_key_value_heads": 8, "num_hidden_layers": 16, "rms_norm_eps": 1e-5,
            "rope_theta": 500000.0, "max_position_embeddings": 131072, "head_dim": 64,
            "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
            "eos_token_id": [128001, 128008, 128009], "torch_dtype": "bfloat16"}"#;
        let config: HfConfig = serde_json::from_str(json).unwrap();
        let family = config.family().unwrap();
        assert_eq!((family.shape.n_kv_head, family.shape.head_dim), (8, 64));
        assert!(family.neox);
        let factors = family.rope_factors.unwrap();
        assert_eq!(factors.len(), 32);
        // High frequencies are kept, the lowest divided by the whole factor.
        assert_eq!(factors[0], 1.0);
        assert_eq!(factors[31], 32.0);
        assert_eq!(config.eos_token_id.ids(), vec![128001, 128008, 128009]);
        let phi: HfConfig = serde_json::from_str(&json.replace("\"llama\"", "\"phi3\"")).unwrap();
        assert!(phi.family().unwrap_err().contains("phi3"));
        // A re-saved config carries both names of the rope type.
        let both = json.replace(
            "\"rope_type\": \"llama3\",",
            "\"rope_type\": \"llama3\", \"type\": \"llama3\",",
        );
        let both: HfConfig = serde_json::from_str(&both).unwrap();
        assert_eq!(both.family().unwrap().rope_factors.unwrap()[31], 32.0);
        // Qwen2 configs name a window they do not use; Mistral's applies.
        let qwen = r#"{"model_type": "qwen2", "hidden_size": 64, "num_attention_heads": 4,
            "num_hidden_layers": 2, "rms_norm_eps": 1e-6, "max_position_embeddings": 131072,
            "sliding_window": 4096, "use_sliding_window": false}"#;
        let qwen: HfConfig = serde_json::from_str(qwen).unwrap();
        assert_eq!(qwen.family().unwrap().shape.context, 131_072);
        let mistral = r#"{"model_type": "mistral", "hidden_size": 64, "num_attention_heads": 4,
            "num_hidden_layers": 2, "rms_norm_eps": 1e-6, "max_position_embeddings": 32768,
            "sliding_window": 4096}"#;
        let mistral: HfConfig = serde_json::from_str(mistral).unwrap();
        assert_eq!(mistral.family().unwrap().shape.context, 4096);
    }
}
