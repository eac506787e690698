//! Reader for PyTorch's legacy (pre-1.6, non-zip) `torch.save` format, which candle's own
//! `pickle::read_all` does not read: five pickles in a row (magic number, protocol version,
//! system info, the object with persistent storage ids, the list of storage keys), then each
//! storage's raw bytes as `u64 element count` + data, in the order of that list.
//!
//! The EfficientNet-Lite0 weights on the registry mirror are in this format.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::Path;

use candle_core::pickle::{Object, Stack};
use candle_core::{DType, Device, Tensor};

#[derive(Debug, thiserror::Error)]
pub enum PthError {
    #[error("{path}: {detail}")]
    Format { path: String, detail: String },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// The first pickle of a legacy file: protocol 2, LONG1 of 10 bytes holding PyTorch's magic
/// number 0x1950a86a20f9469cfc6c, STOP.
const MAGIC_PICKLE: [u8; 15] =
    [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e];
/// The second: protocol 2, BININT2 1001 (the only protocol version there is), STOP.
const VERSION_PICKLE: [u8; 6] = [0x80, 0x02, 0x4d, 0xe9, 0x03, 0x2e];

/// Reads every tensor of a legacy `.pth` state dict onto the CPU.
pub fn read_legacy(path: &Path) -> Result<Vec<(String, Tensor)>, PthError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| PthError::Io { path: shown.clone(), source })?;
    parse_legacy(&bytes).map_err(|detail| PthError::Format { path: shown, detail })
}

fn pickle(bytes: &[u8], pos: &mut usize, what: &str) -> Result<Object, String> {
    let mut cursor = Cursor::new(bytes.get(*pos..).unwrap_or_default());
    let mut stack = Stack::empty();
    stack.read_loop(&mut cursor).map_err(|e| format!("{what}: {e}"))?;
    *pos += usize::try_from(cursor.position()).map_err(|e| e.to_string())?;
    stack.finalize().map_err(|e| format!("{what}: {e}"))
}

fn parse_legacy(bytes: &[u8]) -> Result<Vec<(String, Tensor)>, String> {
    if !bytes.starts_with(&MAGIC_PICKLE) {
        return Err("not a legacy PyTorch file (no magic number)".into());
    }
    let mut pos = MAGIC_PICKLE.len();
    if bytes.get(pos..pos + VERSION_PICKLE.len()) != Some(&VERSION_PICKLE[..]) {
        return Err("unknown legacy protocol version".into());
    }
    pos += VERSION_PICKLE.len();
    pickle(bytes, &mut pos, "system info")?;
    let state = pickle(bytes, &mut pos, "the state dict")?;
    let keys = match pickle(bytes, &mut pos, "the storage keys")? {
        Object::List(keys) => keys,
        other => return Err(format!("storage keys are {other:?}, not a list")),
    };

    let Object::Dict(entries) = state else {
        return Err("the file does not hold a state dict".into());
    };
    let mut infos = Vec::new();
    for (name, value) in entries {
        // Entries that are not tensors (the `_metadata` PyTorch attaches) carry no weights.
        if let Some(info) =
            value.into_tensor_info(name, Path::new("")).map_err(|e| format!("a tensor entry: {e}"))?
        {
            infos.push(info);
        }
    }
    if infos.is_empty() {
        return Err("the state dict holds no tensors".into());
    }

    // The raw storages follow, in key order.
    let mut storages: HashMap<String, &[u8]> = HashMap::new();
    for key in keys {
        let Object::Unicode(key) = key else {
            return Err("a storage key that is not a string".into());
        };
        let count_bytes = bytes.get(pos..pos + 8).ok_or("the file ends before a storage")?;
        let count = u64::from_le_bytes(count_bytes.try_into().map_err(|_| "storage header")?);
        pos += 8;
        // The element size comes from the tensors that use this storage.
        let elem = infos.iter().find(|i| i.path == format!("/{key}")).map_or(4, |i| i.dtype.size_in_bytes());
        let len =
            usize::try_from(count).ok().and_then(|c| c.checked_mul(elem)).ok_or("storage size overflows")?;
        let data = bytes.get(pos..pos + len).ok_or_else(|| format!("storage {key} is truncated"))?;
        pos += len;
        storages.insert(key, data);
    }

    let mut tensors = Vec::with_capacity(infos.len());
    for info in infos {
        let key = info.path.trim_start_matches('/');
        let storage = storages.get(key).ok_or_else(|| format!("{}: storage {key} is missing", info.name))?;
        let tensor = strided_tensor(storage, &info).map_err(|e| format!("{}: {e}", info.name))?;
        let tensor = if info.dtype == DType::F32 {
            tensor
        } else {
            tensor.to_dtype(DType::F32).map_err(|e| e.to_string())?
        };
        tensors.push((info.name, tensor));
    }
    Ok(tensors)
}

/// Builds a tensor from its storage bytes. Besides row-major tensors this accepts any
/// permutation of a row-major layout (a transposed weight saved as is, say).
fn strided_tensor(storage: &[u8], info: &candle_core::pickle::TensorInfo) -> Result<Tensor, String> {
    let dims = info.layout.dims();
    let strides = info.layout.stride();
    // Order the axes from the largest stride to the smallest; that is the storage's own layout.
    let mut order: Vec<usize> = (0..dims.len()).collect();
    order.sort_by(|&a, &b| strides[b].cmp(&strides[a]).then(a.cmp(&b)));
    let stored_dims: Vec<usize> = order.iter().map(|&i| dims[i]).collect();
    let mut expected = 1;
    for &i in order.iter().rev() {
        if dims[i] > 1 && strides[i] != expected {
            return Err(
                "strided tensors that are not a permutation of a dense layout are not supported".into()
            );
        }
        expected *= dims[i];
    }
    let start = info.layout.start_offset();
    let len = expected * info.dtype.size_in_bytes();
    let raw = storage.get(start..start + len).ok_or("outside its storage")?;
    let stored =
        Tensor::from_raw_buffer(raw, info.dtype, &stored_dims, &Device::Cpu).map_err(|e| e.to_string())?;
    if order.iter().enumerate().all(|(i, &o)| i == o) {
        return Ok(stored);
    }
    // Axis `order[k]` of the original is axis `k` of `stored`: invert the permutation.
    let mut back = vec![0; order.len()];
    for (k, &o) in order.iter().enumerate() {
        back[o] = k;
    }
    stored.permute(back).and_then(|t| t.contiguous()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_files_are_errors() {
        assert!(parse_legacy(b"PK\x03\x04 a zip file").is_err());
        assert!(parse_legacy(&MAGIC_PICKLE).is_err());
        let mut truncated = MAGIC_PICKLE.to_vec();
        truncated.extend_from_slice(&VERSION_PICKLE);
        truncated.extend_from_slice(&[0x80, 0x02, 0x7d]);
        assert!(parse_legacy(&truncated).is_err());
    }
}
