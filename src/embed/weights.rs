//! Reads a safetensors checkpoint's tensors straight from the file into f32 vectors, one read
//! per tensor. Going through candle (the whole file read into memory, a tensor built from it,
//! then our vectors copied out) touched three copies of the weights: loading the 470 MB
//! multilingual-e5-small folder took 6 s and 1.7 GB at its peak, nearly all of it the kernel
//! clearing fresh pages.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use safetensors::tensor::{Dtype, Metadata};

/// An open safetensors file and its header.
pub struct SafetensorsFile {
    path: PathBuf,
    file: std::sync::Mutex<File>,
    /// Where the data section starts.
    data_start: u64,
    /// The header, parsed and checked by the `safetensors` crate (offsets contiguous, each
    /// tensor's bytes matching its shape and type).
    header: Metadata,
}

/// Why a tensor could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct WeightsError {
    path: String,
    message: String,
}

impl SafetensorsFile {
    /// Opens `path` and reads its header.
    pub fn open(path: &Path) -> Result<Self, WeightsError> {
        let err = |message: String| WeightsError { path: path.display().to_string(), message };
        let mut file = File::open(path).map_err(|e| err(e.to_string()))?;
        let len = file.metadata().map_err(|e| err(e.to_string()))?.len();
        let mut size = [0u8; 8];
        file.read_exact(&mut size).map_err(|e| err(format!("no safetensors header: {e}")))?;
        let header_len = u64::from_le_bytes(size);
        // Headers are kilobytes; a length past the file or absurdly large is a broken file.
        if header_len > len.saturating_sub(8) || header_len > 100 << 20 {
            return Err(err(format!("a header of {header_len} bytes in a file of {len}")));
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact(&mut header).map_err(|e| err(format!("the header: {e}")))?;
        let header: Metadata =
            serde_json::from_slice(&header).map_err(|e| err(format!("the header: {e}")))?;
        let data_start = 8 + header_len;
        if data_start + header.data_len() as u64 > len {
            return Err(err(format!("the tensors run past the end of the file ({len} bytes)")));
        }
        Ok(Self { path: path.to_owned(), file: std::sync::Mutex::new(file), data_start, header })
    }

    fn err(&self, message: String) -> WeightsError {
        WeightsError { path: self.path.display().to_string(), message }
    }

    /// Whether the file holds a tensor named `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.header.info(name).is_some()
    }

    /// The tensor `name`, which must have `shape`, as f32 values (row-major); F32, F16 and
    /// BF16 tensors are read, the others refused.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, WeightsError> {
        let info =
            self.header.info(name).ok_or_else(|| self.err(format!("no tensor named {name}")))?;
        if info.shape != shape {
            return Err(
                self.err(format!("tensor {name} has shape {:?}, expected {shape:?}", info.shape))
            );
        }
        if !matches!(info.dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16) {
            return Err(self.err(format!("tensor {name} is {:?}, not a float type", info.dtype)));
        }
        let count: usize = shape.iter().product();
        let mut file = self.file.lock().map_err(|_| self.err("the file is unusable".into()))?;
        file.seek(SeekFrom::Start(self.data_start + info.data_offsets.0 as u64))
            .map_err(|e| self.err(format!("tensor {name}: {e}")))?;
        let read = |file: &mut File, bytes: &mut [u8]| {
            file.read_exact(bytes).map_err(|e| self.err(format!("tensor {name}: {e}")))
        };
        // The file stores little-endian values, as the CPUs Quarry runs on do; the header
        // check made sure the bytes are exactly `count` values of the type.
        let mut values = vec![0f32; count];
        match info.dtype {
            Dtype::F32 => read(&mut file, bytemuck::cast_slice_mut(&mut values))?,
            Dtype::F16 => {
                let mut halves = vec![f16::ZERO; count];
                read(&mut file, bytemuck::cast_slice_mut(&mut halves))?;
                half::slice::HalfFloatSliceExt::convert_to_f32_slice(&halves[..], &mut values);
            }
            _ => {
                let mut halves = vec![bf16::ZERO; count];
                read(&mut file, bytemuck::cast_slice_mut(&mut halves))?;
                half::slice::HalfFloatSliceExt::convert_to_f32_slice(&halves[..], &mut values);
            }
        }
        Ok(values)
    }
}

/// A view of a [`SafetensorsFile`] under a name prefix, as checkpoints nest their tensors
/// (`encoder.layer.0.attention…`).
#[derive(Clone)]
pub struct Scope<'a> {
    file: &'a SafetensorsFile,
    prefix: String,
}

impl<'a> Scope<'a> {
    /// The whole file.
    pub fn root(file: &'a SafetensorsFile) -> Self {
        Self { file, prefix: String::new() }
    }

    /// The full name of `name` here.
    fn name(&self, name: &str) -> String {
        if self.prefix.is_empty() { name.to_owned() } else { format!("{}.{name}", self.prefix) }
    }

    /// The tensor `name` under this prefix.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, WeightsError> {
        self.file.get(&self.name(name), shape)
    }

    /// Whether a tensor `name` exists under this prefix.
    pub fn contains(&self, name: &str) -> bool {
        self.file.contains(&self.name(name))
    }

    /// The view under this prefix followed by `sub`.
    pub fn pp(&self, sub: &str) -> Scope<'a> {
        Scope { file: self.file, prefix: self.name(sub) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    fn write(path: &Path) {
        let floats: Vec<u8> =
            [1.0f32, -2.5, 3.25, 0.5, 7.0, -1.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let halves: Vec<u8> =
            [0.5f32, -4.0].iter().flat_map(|v| f16::from_f32(*v).to_le_bytes()).collect();
        let brains: Vec<u8> =
            [1.5f32, 2.0].iter().flat_map(|v| bf16::from_f32(*v).to_le_bytes()).collect();
        let ints: Vec<u8> = [1i32, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
        let tensors = [
            ("bert.a.weight", TensorView::new(Dtype::F32, vec![2, 3], &floats).unwrap()),
            ("bert.a.half", TensorView::new(Dtype::F16, vec![2], &halves).unwrap()),
            ("bert.a.brain", TensorView::new(Dtype::BF16, vec![2], &brains).unwrap()),
            ("ids", TensorView::new(Dtype::I32, vec![2], &ints).unwrap()),
        ];
        safetensors::serialize_to_file(tensors, None, path).unwrap();
    }

    #[test]
    fn tensors_are_read_by_name_shape_and_type() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        write(&path);
        let file = SafetensorsFile::open(&path).unwrap();
        let a = Scope::root(&file).pp("bert").pp("a");
        assert_eq!(a.get("weight", &[2, 3]).unwrap(), [1.0, -2.5, 3.25, 0.5, 7.0, -1.0]);
        assert_eq!(a.get("half", &[2]).unwrap(), [0.5, -4.0]);
        assert_eq!(a.get("brain", &[2]).unwrap(), [1.5, 2.0]);
        assert!(a.contains("weight") && !a.contains("bias"));
        let err = |r: Result<Vec<f32>, WeightsError>| r.unwrap_err().to_string();
        assert!(err(a.get("weight", &[3, 2])).contains("has shape [2, 3], expected [3, 2]"));
        assert!(err(a.get("bias", &[2])).contains("no tensor named bert.a.bias"));
        assert!(err(Scope::root(&file).get("ids", &[2])).contains("I32, not a float type"));
    }

    #[test]
    fn broken_files_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        write(&path);
        let bytes = std::fs::read(&path).unwrap();
        for (name, broken) in [
            ("empty.safetensors", Vec::new()),
            ("cut.safetensors", bytes[..bytes.len() - 3].to_vec()),
            ("huge-header.safetensors", u64::MAX.to_le_bytes().to_vec()),
            ("not-json.safetensors", [8u64.to_le_bytes().as_slice(), b"{{{{{{{{"].concat()),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, broken).unwrap();
            let err = SafetensorsFile::open(&path).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(name), "{name}: {err}");
        }
    }
}
