//! The weights (initializers) of an ONNX model: a reader of the few protobuf fields that hold
//! them (`ModelProto.graph` → `GraphProto.initializer` → `TensorProto`'s dims, type, name and
//! data), for models whose authors publish their weights only as ONNX (Silero VAD).

use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("not an ONNX model this program can read: {0}")]
    Malformed(&'static str),
    #[error("tensor {name}: {detail}")]
    Tensor { name: String, detail: String },
}

/// A float tensor: its shape and values.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub dims: Vec<usize>,
    pub values: Vec<f32>,
}

/// ONNX's code for 32-bit floats (`TensorProto.DataType.FLOAT`).
const FLOAT: u64 = 1;

/// The float initializers of the model's main graph, by name.
pub fn initializers(bytes: &[u8]) -> Result<HashMap<String, Tensor>, OnnxError> {
    let mut out = HashMap::new();
    let mut graph = None;
    for field in Fields(bytes) {
        if let (7, Value::Bytes(b)) = field? {
            graph = Some(b);
        }
    }
    let graph = graph.ok_or(OnnxError::Malformed("no graph"))?;
    for field in Fields(graph) {
        if let (5, Value::Bytes(b)) = field? {
            let (name, tensor) = tensor(b)?;
            out.insert(name, tensor);
        }
    }
    Ok(out)
}

fn tensor(bytes: &[u8]) -> Result<(String, Tensor), OnnxError> {
    let (mut dims, mut kind, mut name, mut raw, mut floats) =
        (Vec::new(), 0, String::new(), None, Vec::new());
    for field in Fields(bytes) {
        match field? {
            (1, Value::Varint(d)) => dims.push(d),
            (1, Value::Bytes(b)) => {
                let mut rest = b;
                while !rest.is_empty() {
                    let (d, used) = varint(rest)?;
                    dims.push(d);
                    rest = &rest[used..];
                }
            }
            (2, Value::Varint(k)) => kind = k,
            (4, Value::Fixed32(f)) => floats.push(f32::from_bits(f)),
            (4, Value::Bytes(b)) => floats.extend(le_floats(b)),
            (8, Value::Bytes(b)) => name = String::from_utf8_lossy(b).into_owned(),
            (9, Value::Bytes(b)) => raw = Some(b),
            _ => {}
        }
    }
    let fail = |detail: String| OnnxError::Tensor { name: name.clone(), detail };
    if kind != FLOAT {
        return Err(fail(format!("element type {kind}, not 32-bit float")));
    }
    let values = match raw {
        Some(b) if b.len() % 4 == 0 => le_floats(b).collect(),
        Some(b) => return Err(fail(format!("{} bytes of data, not whole floats", b.len()))),
        None => floats,
    };
    let dims: Vec<usize> = dims.into_iter().map(|d| usize::try_from(d).unwrap_or(usize::MAX)).collect();
    let count = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if count != Some(values.len()) {
        return Err(fail(format!("shape {dims:?} but {} values", values.len())));
    }
    Ok((name, Tensor { dims, values }))
}

fn le_floats(b: &[u8]) -> impl Iterator<Item = f32> + '_ {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

/// A protobuf field's value, by wire type.
enum Value<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// The fields of one protobuf message: (field number, value).
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Value<'a>), OnnxError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let field = self.field();
        if field.is_err() {
            self.0 = &[];
        }
        Some(field)
    }
}

impl<'a> Fields<'a> {
    fn field(&mut self) -> Result<(u64, Value<'a>), OnnxError> {
        let (key, used) = varint(self.0)?;
        self.0 = &self.0[used..];
        let take = |this: &mut Self, n: usize| -> Result<&'a [u8], OnnxError> {
            if this.0.len() < n {
                return Err(OnnxError::Malformed("a field runs past the end of its message"));
            }
            let (head, rest) = this.0.split_at(n);
            this.0 = rest;
            Ok(head)
        };
        let value = match key & 7 {
            0 => {
                let (v, used) = varint(self.0)?;
                self.0 = &self.0[used..];
                Value::Varint(v)
            }
            1 => {
                take(self, 8)?;
                Value::Fixed64
            }
            2 => {
                let (len, used) = varint(self.0)?;
                self.0 = &self.0[used..];
                Value::Bytes(take(self, usize::try_from(len).unwrap_or(usize::MAX))?)
            }
            5 => {
                let b = take(self, 4)?;
                Value::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            _ => return Err(OnnxError::Malformed("an unknown protobuf wire type")),
        };
        Ok((key >> 3, value))
    }
}

/// A base-128 varint: its value and the bytes it took.
fn varint(bytes: &[u8]) -> Result<(u64, usize), OnnxError> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(OnnxError::Malformed("a varint longer than 10 bytes or cut off"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message built field by field as protobuf encodes it.
    fn field(number: u64, wire: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = encode(number << 3 | wire);
        if wire == 2 {
            out.extend(encode(payload.len() as u64));
        }
        out.extend_from_slice(payload);
        out
    }

    fn encode(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return out;
            }
            out.push(b | 0x80);
        }
    }

    #[test]
    fn reads_raw_and_listed_floats_with_their_shapes() {
        let raw: Vec<u8> = [1.5f32, -2.0, 0.25, 8.0].iter().flat_map(|f| f.to_le_bytes()).collect();
        let mut packed_dims = encode(2);
        packed_dims.extend(encode(2));
        let a = [field(1, 2, &packed_dims), field(2, 0, &encode(1)), field(8, 2, b"a"), field(9, 2, &raw)]
            .concat();
        let listed: Vec<u8> = [3.0f32, 4.0].iter().flat_map(|f| f.to_le_bytes()).collect();
        let b = [field(1, 0, &encode(2)), field(2, 0, &encode(1)), field(8, 2, b"b"), field(4, 2, &listed)]
            .concat();
        let graph = [field(1, 2, b"a node, skipped"), field(5, 2, &a), field(5, 2, &b)].concat();
        let model = [field(1, 0, &encode(8)), field(7, 2, &graph)].concat();
        let got = initializers(&model).expect("reads");
        assert_eq!(got["a"], Tensor { dims: vec![2, 2], values: vec![1.5, -2.0, 0.25, 8.0] });
        assert_eq!(got["b"], Tensor { dims: vec![2], values: vec![3.0, 4.0] });
    }

    #[test]
    fn a_cut_or_wrong_file_is_an_error_not_a_panic() {
        let raw: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|f| f.to_le_bytes()).collect();
        let t =
            [field(1, 0, &encode(3)), field(2, 0, &encode(1)), field(8, 2, b"t"), field(9, 2, &raw)].concat();
        let model = field(7, 2, &field(5, 2, &t));
        assert!(matches!(initializers(&model), Err(OnnxError::Tensor { .. })), "3 dims, 2 values");
        let whole = field(7, 2, &field(5, 2, &[field(2, 0, &encode(1)), field(9, 2, &raw)].concat()));
        // Every cut falls inside the graph's length-delimited field: each is an error.
        for cut in 1..whole.len() {
            assert!(initializers(&whole[..cut]).is_err(), "cut at {cut} of {}", whole.len());
        }
        assert!(initializers(b"not protobuf at all \xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff").is_err());
        let doubles = field(7, 2, &field(5, 2, &[field(2, 0, &encode(11)), field(8, 2, b"d")].concat()));
        assert!(initializers(&doubles).is_err(), "a tensor of doubles is refused");
    }
}
