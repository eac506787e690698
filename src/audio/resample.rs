//! Streaming conversion of mono audio at any rate to 16 kHz (rubato's FFT resampler), with the
//! resampler's delay trimmed so output sample `n` lines up with input time `n / 16000`.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

use super::SAMPLE_RATE;

/// Input frames per resampler call.
const CHUNK: usize = 1024;

pub struct To16k {
    inner: Option<Fft<f32>>,
    pending: Vec<f32>,
    /// Output frames still to drop (the resampler's delay).
    skip: usize,
    in_rate: u32,
    consumed_in: u64,
    produced_out: u64,
}

/// Sample rates accepted: a damaged header can claim any number, and the FFT resampler's
/// buffers grow with the rate (found by fuzzing: a claimed rate that asked for a gigabyte).
const RATES: std::ops::RangeInclusive<u32> = 1_000..=384_000;

impl To16k {
    pub fn new(in_rate: u32) -> Result<Self, String> {
        if !RATES.contains(&in_rate) {
            return Err(format!(
                "it claims a sample rate of {in_rate} Hz; audio files use {} to {} Hz",
                RATES.start(),
                RATES.end()
            ));
        }
        let inner = if in_rate == SAMPLE_RATE {
            None
        } else {
            Some(
                Fft::<f32>::new(in_rate as usize, SAMPLE_RATE as usize, CHUNK, 1, FixedSync::Input)
                    .map_err(|e| e.to_string())?,
            )
        };
        let skip = inner.as_ref().map_or(0, Resampler::output_delay);
        Ok(Self { inner, pending: Vec::new(), skip, in_rate, consumed_in: 0, produced_out: 0 })
    }

    /// Resamples what it can of `input`, keeping the remainder for the next call.
    /// Samples that are not finite (a damaged float WAV) become silence, and the rest are
    /// clipped to full scale (±1): the FFT resampler panics on NaN, and huge float samples
    /// overflow it into infinities; nothing downstream can use either.
    pub fn push(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), String> {
        let finite = input.iter().map(|&x| if x.is_finite() { x.clamp(-1.0, 1.0) } else { 0.0 });
        let Some(inner) = self.inner.as_mut() else {
            out.extend(finite);
            return Ok(());
        };
        self.pending.extend(finite);
        let mut buf = vec![0.0f32; inner.output_frames_max()];
        let mut start = 0;
        while self.pending.len() - start >= inner.input_frames_next() {
            let need = inner.input_frames_next();
            let input = InterleavedSlice::new(&self.pending[start..start + need], 1, need)
                .map_err(|e| e.to_string())?;
            let cap = buf.len();
            let mut output = InterleavedSlice::new_mut(&mut buf, 1, cap).map_err(|e| e.to_string())?;
            let (n_in, n_out) =
                inner.process_into_buffer(&input, &mut output, None).map_err(|e| e.to_string())?;
            start += n_in;
            self.consumed_in += n_in as u64;
            Self::emit(&mut self.skip, &mut self.produced_out, &buf[..n_out], out);
        }
        self.pending.drain(..start);
        Ok(())
    }

    /// Flushes the remainder and the resampler's tail, ending exactly at the input's duration.
    pub fn finish(&mut self, out: &mut Vec<f32>) -> Result<(), String> {
        let Some(inner) = self.inner.as_mut() else { return Ok(()) };
        let total_in = self.consumed_in + self.pending.len() as u64;
        let expected = (total_in * u64::from(SAMPLE_RATE)).div_ceil(u64::from(self.in_rate));
        let mut buf = vec![0.0f32; inner.output_frames_max()];
        // Feed silence until the delayed output has caught up with the real input.
        let mut rounds = 0;
        while self.produced_out < expected && rounds < 64 {
            rounds += 1;
            let need = inner.input_frames_next();
            let take = self.pending.len().min(need);
            let mut block = self.pending[..take].to_vec();
            self.pending.drain(..take);
            block.resize(need, 0.0);
            let input = InterleavedSlice::new(&block, 1, need).map_err(|e| e.to_string())?;
            let cap = buf.len();
            let mut output = InterleavedSlice::new_mut(&mut buf, 1, cap).map_err(|e| e.to_string())?;
            let indexing = Indexing { partial_len: Some(take), ..Indexing::default() };
            let (_, n_out) =
                inner.process_into_buffer(&input, &mut output, Some(&indexing)).map_err(|e| e.to_string())?;
            let before = out.len();
            Self::emit(&mut self.skip, &mut self.produced_out, &buf[..n_out], out);
            if self.produced_out > expected {
                let extra = usize::try_from(self.produced_out - expected).unwrap_or(0);
                out.truncate(out.len().saturating_sub(extra).max(before));
                self.produced_out = expected;
            }
        }
        Ok(())
    }

    fn emit(skip: &mut usize, produced: &mut u64, block: &[f32], out: &mut Vec<f32>) {
        let drop = (*skip).min(block.len());
        *skip -= drop;
        out.extend_from_slice(&block[drop..]);
        *produced += (block.len() - drop) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, hz: f32, secs: f32) -> Vec<f32> {
        (0..(rate as f32 * secs) as usize)
            .map(|i| (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin() * 0.5)
            .collect()
    }

    #[test]
    fn a_44k1_sine_becomes_the_same_sine_at_16k_with_the_same_length() {
        let input = sine(44_100, 440.0, 1.5);
        let mut r = To16k::new(44_100).expect("resampler");
        let mut out = Vec::new();
        for block in input.chunks(777) {
            r.push(block, &mut out).expect("push");
        }
        r.finish(&mut out).expect("finish");
        assert_eq!(out.len(), 24_000);
        let want = sine(16_000, 440.0, 1.5);
        // Away from the edges the resampled signal matches the ideal one closely; a one-sample
        // shift would already be an error of 0.086.
        let err: f32 =
            out[2000..22_000].iter().zip(&want[2000..22_000]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(err < 0.03, "max error {err}");
    }

    #[test]
    fn samples_that_are_not_finite_or_huge_do_not_reach_the_resampler() {
        // Found by the audio_decode fuzz target: a float WAV whose samples are NaN or infinite.
        let mut input = sine(44_100, 440.0, 0.5);
        input[100] = f32::NAN;
        input[5000] = f32::INFINITY;
        input[9000] = f32::NEG_INFINITY;
        input[12_000] = f32::MAX;
        input[12_001] = -f32::MAX;
        let mut r = To16k::new(44_100).expect("resampler");
        let mut out = Vec::new();
        r.push(&input, &mut out).expect("push");
        r.finish(&mut out).expect("finish");
        assert_eq!(out.len(), 8000);
        assert!(out.iter().all(|x| x.is_finite()));
        let mut same_rate = To16k::new(16_000).expect("no resampling");
        let mut out = Vec::new();
        same_rate.push(&[0.5, f32::NAN, 3.0], &mut out).expect("push");
        assert_eq!(out, [0.5, 0.0, 1.0]);
    }

    #[test]
    fn a_sample_rate_no_audio_uses_is_refused_before_any_allocation() {
        let why = To16k::new(271_646_756).err().expect("refused");
        assert!(why.contains("271646756 Hz"), "{why}");
        assert!(To16k::new(0).is_err());
        assert!(To16k::new(384_000).is_ok() && To16k::new(8_000).is_ok());
    }
}
