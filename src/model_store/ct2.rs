//! Reader for CTranslate2's `model.bin` (binary format version 6): a header, named variables
//! (name, shape, data type, bytes) and aliases. Everything is bounds-checked: a truncated or
//! hostile file gives an error, never a panic.

use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum Ct2Error {
    #[error("not a CTranslate2 model: {0}")]
    Format(String),
    #[error("CTranslate2 binary version {0} is not supported (this reader knows version 6)")]
    Version(u32),
}

/// The element types CTranslate2 writes, by their numeric id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl DType {
    fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::BF16,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
}

/// One named variable: its shape, type and the range of its bytes in the file.
#[derive(Debug, Clone)]
pub struct Variable {
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub offset: usize,
    pub len: usize,
}

/// A parsed model file. It keeps the file's bytes and hands out slices of them.
#[derive(Debug)]
pub struct Ct2Model {
    pub spec: String,
    pub revision: u32,
    bytes: Vec<u8>,
    variables: BTreeMap<String, Variable>,
    aliases: BTreeMap<String, String>,
}

const MAX_RANK: usize = 8;

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Ct2Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| Ct2Error::Format(format!("file ends inside {what} (at byte {})", self.pos)))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn u8(&mut self, what: &str) -> Result<u8, Ct2Error> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, Ct2Error> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, Ct2Error> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A length-prefixed, NUL-terminated UTF-8 string.
    fn string(&mut self, what: &str) -> Result<String, Ct2Error> {
        let len = usize::from(self.u16(what)?);
        let raw = self.take(len, what)?;
        let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
        String::from_utf8(raw.to_vec()).map_err(|_| Ct2Error::Format(format!("{what} is not UTF-8")))
    }
}

impl Ct2Model {
    pub fn parse(bytes: Vec<u8>) -> Result<Self, Ct2Error> {
        let mut c = Cursor { bytes: &bytes, pos: 0 };
        let version = c.u32("the header")?;
        if version != 6 {
            return Err(Ct2Error::Version(version));
        }
        let spec = c.string("the spec name")?;
        let revision = c.u32("the spec revision")?;
        let count = c.u32("the variable count")? as usize;
        let mut variables = BTreeMap::new();
        for i in 0..count {
            let name = c.string(&format!("the name of variable {i}"))?;
            let rank = usize::from(c.u8(&format!("the rank of {name}"))?);
            if rank > MAX_RANK {
                return Err(Ct2Error::Format(format!("{name} has rank {rank}")));
            }
            let mut shape = Vec::with_capacity(rank);
            for _ in 0..rank {
                shape.push(c.u32(&format!("the shape of {name}"))? as usize);
            }
            let id = c.u8(&format!("the type of {name}"))?;
            let dtype = DType::from_id(id)
                .ok_or_else(|| Ct2Error::Format(format!("{name} has unknown type id {id}")))?;
            let len = c.u32(&format!("the size of {name}"))? as usize;
            let elements = shape
                .iter()
                .try_fold(1usize, |acc, &d| acc.checked_mul(d))
                .ok_or_else(|| Ct2Error::Format(format!("{name} has an impossible shape")))?;
            if elements.checked_mul(dtype.size()) != Some(len) {
                return Err(Ct2Error::Format(format!(
                    "{name}: shape {shape:?} of {dtype:?} does not fill its {len} bytes"
                )));
            }
            let offset = c.pos;
            c.take(len, &format!("the data of {name}"))?;
            variables.insert(name, Variable { shape, dtype, offset, len });
        }
        let alias_count = c.u32("the alias count")? as usize;
        let mut aliases = BTreeMap::new();
        for i in 0..alias_count {
            let alias = c.string(&format!("alias {i}"))?;
            let target = c.string(&format!("the target of alias {alias}"))?;
            if !variables.contains_key(&target) {
                return Err(Ct2Error::Format(format!("alias {alias} names missing {target}")));
            }
            aliases.insert(alias, target);
        }
        Ok(Self { spec, revision, bytes, variables, aliases })
    }

    /// Looks a variable up by name, following aliases.
    pub fn get(&self, name: &str) -> Option<&Variable> {
        let name = self.aliases.get(name).map_or(name, String::as_str);
        self.variables.get(name)
    }

    pub fn data(&self, var: &Variable) -> &[u8] {
        &self.bytes[var.offset..var.offset + var.len]
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.variables.keys().map(String::as_str)
    }

    pub fn aliases(&self) -> impl Iterator<Item = (&str, &str)> {
        self.aliases.iter().map(|(a, t)| (a.as_str(), t.as_str()))
    }

    /// A scalar integer attribute (`encoder/num_heads`, say).
    pub fn scalar_int(&self, name: &str) -> Option<i64> {
        let var = self.get(name)?;
        if !var.shape.is_empty() {
            return None;
        }
        let d = self.data(var);
        Some(match var.dtype {
            DType::I8 => i64::from(d[0] as i8),
            DType::I16 => i64::from(i16::from_le_bytes([d[0], d[1]])),
            DType::I32 => i64::from(i32::from_le_bytes([d[0], d[1], d[2], d[3]])),
            _ => return None,
        })
    }

    /// A variable's values as f32, whatever float type it is stored in.
    pub fn to_f32(&self, var: &Variable) -> Option<Vec<f32>> {
        let d = self.data(var);
        Some(match var.dtype {
            DType::F32 => d.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            DType::F16 => {
                d.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            }
            DType::BF16 => {
                d.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    fn tiny_model() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&6u32.to_le_bytes());
        string(&mut b, "WhisperSpec");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes());
        string(&mut b, "w");
        b.push(2);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.push(4);
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&half::f16::from_f32(1.5).to_le_bytes());
        b.extend_from_slice(&half::f16::from_f32(-2.0).to_le_bytes());
        string(&mut b, "heads");
        b.push(0);
        b.push(2);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&6i16.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        string(&mut b, "tied");
        string(&mut b, "w");
        b
    }

    #[test]
    fn reads_variables_scalars_and_aliases() {
        let m = Ct2Model::parse(tiny_model()).expect("valid model");
        assert_eq!(m.spec, "WhisperSpec");
        let w = m.get("tied").expect("alias resolves");
        assert_eq!(w.shape, vec![2, 1]);
        assert_eq!(m.to_f32(w), Some(vec![1.5, -2.0]));
        assert_eq!(m.scalar_int("heads"), Some(6));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let full = tiny_model();
        for len in 0..full.len() {
            assert!(Ct2Model::parse(full[..len].to_vec()).is_err(), "prefix of {len} bytes");
        }
    }

    #[test]
    fn inconsistent_sizes_are_rejected() {
        let mut b = tiny_model();
        // The byte count of "w" (4) sits right before its data; claim 6 instead.
        let pos = b.windows(2).position(|w| w == [4, 4]).expect("type then size") + 1;
        b[pos] = 6;
        let err = Ct2Model::parse(b).expect_err("size mismatch");
        assert!(err.to_string().contains("does not fill"), "{err}");
    }
}
