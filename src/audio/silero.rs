//! Silero VAD (v6), the learned voice detector: for each 32 ms of 16 kHz audio, the probability
//! that someone is speaking. A small network run in plain loops (about 0.7 M multiply-adds a
//! chunk): an STFT as a convolution, four convolutions, an LSTM cell of 128, a linear output.
//! Its weights are read from the authors' ONNX model in the `silero-vad` package (model store
//! entry `silero-vad`); `tests/vad.rs` checks its output against that model run by onnxruntime.

use std::collections::HashMap;
use std::path::Path;

use crate::model_store::onnx;

/// Samples the network takes at a time (32 ms).
pub const CHUNK: usize = 512;
/// Samples of the previous chunk put before each one.
const CONTEXT: usize = 64;
/// Reflection padding at the end of the input, as the network was trained with.
const PAD: usize = 64;
const INPUT: usize = CONTEXT + CHUNK + PAD;
const N_FFT: usize = 256;
const HOP: usize = 128;
const BINS: usize = N_FFT / 2 + 1;
const FRAMES: usize = (INPUT - N_FFT) / HOP + 1;
const HIDDEN: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum SileroError {
    #[error("{path}: {detail}")]
    Load { path: String, detail: String },
    #[error("{path}: weight {name}: {detail}")]
    Weight { path: String, name: String, detail: String },
}

/// A 1-D convolution's weights, each output channel's kernel flattened as `[in][k]`.
#[derive(Debug)]
struct Conv {
    weight: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

/// The network's weights; shared by every stream it listens to.
#[derive(Debug)]
pub struct SileroModel {
    stft: Vec<f32>,
    convs: [Conv; 4],
    /// The LSTM's input and hidden weights side by side per gate row: `[4·128][128 + 128]`.
    lstm: Vec<f32>,
    lstm_bias: Vec<f32>,
    out: Vec<f32>,
    out_bias: f32,
}

impl SileroModel {
    /// Reads the weights from the authors' 16 kHz ONNX model (`silero_vad_16k_op15.onnx`) and
    /// checks every shape.
    pub fn load(path: &Path) -> Result<Self, SileroError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path)
            .map_err(|e| SileroError::Load { path: shown.clone(), detail: e.to_string() })?;
        let tensors = onnx::initializers(&bytes)
            .map_err(|e| SileroError::Load { path: shown.clone(), detail: e.to_string() })?;
        let weights = Weights { tensors, path: &shown };
        let conv = |layer: usize, outputs: usize, inputs: usize| -> Result<Conv, SileroError> {
            let name = format!("model.encoder.{layer}.reparam_conv");
            Ok(Conv {
                weight: weights.get(&format!("{name}.weight"), &[outputs, inputs, 3])?,
                bias: weights.get(&format!("{name}.bias"), &[outputs])?,
                inputs,
                outputs,
            })
        };
        let from_input = weights.get("model.decoder.rnn.weight_ih", &[4 * HIDDEN, HIDDEN])?;
        let from_hidden = weights.get("model.decoder.rnn.weight_hh", &[4 * HIDDEN, HIDDEN])?;
        let lstm = from_input
            .chunks_exact(HIDDEN)
            .zip(from_hidden.chunks_exact(HIDDEN))
            .flat_map(|(a, b)| a.iter().chain(b))
            .copied()
            .collect();
        let input_bias = weights.get("model.decoder.rnn.bias_ih", &[4 * HIDDEN])?;
        let hidden_bias = weights.get("model.decoder.rnn.bias_hh", &[4 * HIDDEN])?;
        let out_bias = weights.get("model.decoder.decoder.2.bias", &[1])?;
        Ok(Self {
            stft: weights.get("model.stft.forward_basis_buffer", &[2 * BINS, 1, N_FFT])?,
            convs: [conv(0, 128, BINS)?, conv(1, 64, 128)?, conv(2, 64, 64)?, conv(3, 128, 64)?],
            lstm,
            lstm_bias: input_bias.iter().zip(&hidden_bias).map(|(a, b)| a + b).collect(),
            out: weights.get("model.decoder.decoder.2.weight", &[1, HIDDEN, 1])?,
            out_bias: out_bias[0],
        })
    }
}

struct Weights<'a> {
    tensors: HashMap<String, onnx::Tensor>,
    path: &'a str,
}

impl Weights<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, SileroError> {
        let err = |detail: String| SileroError::Weight {
            path: self.path.to_owned(),
            name: name.to_owned(),
            detail,
        };
        let t = self.tensors.get(name).ok_or_else(|| err("missing".into()))?;
        if t.dims != shape {
            return Err(err(format!("shape {:?}, expected {shape:?}", t.dims)));
        }
        Ok(t.values.clone())
    }
}

/// One stream's detector: the network's memory (LSTM state, the last samples heard).
#[derive(Debug, Clone)]
pub struct SileroState {
    h: Vec<f32>,
    c: Vec<f32>,
    context: [f32; CONTEXT],
}

impl Default for SileroState {
    fn default() -> Self {
        Self { h: vec![0.0; HIDDEN], c: vec![0.0; HIDDEN], context: [0.0; CONTEXT] }
    }
}

impl SileroState {
    /// The probability that `chunk` (512 samples, 16 kHz) holds speech, given what came before.
    pub fn probability(&mut self, model: &SileroModel, chunk: &[f32; CHUNK]) -> f32 {
        // [context | chunk | reflection of the chunk's end]
        let mut input = [0.0f32; INPUT];
        input[..CONTEXT].copy_from_slice(&self.context);
        input[CONTEXT..CONTEXT + CHUNK].copy_from_slice(chunk);
        for i in 0..PAD {
            input[CONTEXT + CHUNK + i] = input[CONTEXT + CHUNK - 2 - i];
        }
        self.context.copy_from_slice(&chunk[CHUNK - CONTEXT..]);

        // The STFT's magnitude, [bin][frame].
        let mut spectrum = vec![0.0f32; BINS * FRAMES];
        for t in 0..FRAMES {
            let frame = &input[t * HOP..t * HOP + N_FFT];
            for bin in 0..BINS {
                let re = dot(&model.stft[bin * N_FFT..(bin + 1) * N_FFT], frame);
                let im = dot(&model.stft[(bin + BINS) * N_FFT..(bin + BINS + 1) * N_FFT], frame);
                spectrum[bin * FRAMES + t] = (re * re + im * im).sqrt();
            }
        }
        let (hidden, len) = conv_relu(&model.convs[0], &spectrum, FRAMES, 1);
        let (hidden, len) = conv_relu(&model.convs[1], &hidden, len, 2);
        let (hidden, len) = conv_relu(&model.convs[2], &hidden, len, 2);
        let (features, len) = conv_relu(&model.convs[3], &hidden, len, 1);
        debug_assert_eq!(len, 1);

        // LSTM cell, gates in PyTorch's order: input, forget, cell, output.
        let mut xh = features;
        xh.extend_from_slice(&self.h);
        let gate = |g: usize, j: usize| {
            let row = g * HIDDEN + j;
            dot(&model.lstm[row * 2 * HIDDEN..(row + 1) * 2 * HIDDEN], &xh) + model.lstm_bias[row]
        };
        for j in 0..HIDDEN {
            let (input_gate, forget, cell, output) =
                (sigmoid(gate(0, j)), sigmoid(gate(1, j)), gate(2, j).tanh(), sigmoid(gate(3, j)));
            self.c[j] = forget * self.c[j] + input_gate * cell;
            self.h[j] = output * self.c[j].tanh();
        }
        let relu_h: Vec<f32> = self.h.iter().map(|v| v.max(0.0)).collect();
        sigmoid(dot(&model.out, &relu_h) + model.out_bias)
    }
}

/// A kernel-3, padding-1 convolution followed by a rectifier over `[channel][time]`; returns the output
/// and its length.
fn conv_relu(conv: &Conv, input: &[f32], len: usize, stride: usize) -> (Vec<f32>, usize) {
    let out_len = (len + 2 - 3) / stride + 1;
    let mut out = vec![0.0f32; conv.outputs * out_len];
    let mut column = vec![0.0f32; conv.inputs * 3];
    for t in 0..out_len {
        // The input window under the kernel at output time t, laid out as the kernel is.
        for c in 0..conv.inputs {
            for k in 0..3 {
                let at = (t * stride + k).checked_sub(1).filter(|&i| i < len);
                column[c * 3 + k] = at.map_or(0.0, |i| input[c * len + i]);
            }
        }
        for o in 0..conv.outputs {
            let kernel = &conv.weight[o * conv.inputs * 3..(o + 1) * conv.inputs * 3];
            out[o * out_len + t] = (dot(kernel, &column) + conv.bias[o]).max(0.0);
        }
    }
    (out, out_len)
}

/// A dot product in eight lanes, so the compiler can keep it in vector registers.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..8 {
            lanes[l] += x[l] * y[l];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}
