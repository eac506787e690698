//! Transcript exports: plain text, SubRip, WebVTT and JSON.

use std::fmt::Write as _;

use super::Transcript;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Txt,
    Srt,
    Vtt,
    Json,
}

impl Format {
    /// The format a file name's ending asks for (`talk.srt`), if it is one of them.
    pub fn from_path(path: &std::path::Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        [Format::Txt, Format::Srt, Format::Vtt, Format::Json].into_iter().find(|f| f.extension() == ext)
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Txt => "txt",
            Format::Srt => "srt",
            Format::Vtt => "vtt",
            Format::Json => "json",
        }
    }
}

/// `HH:MM:SS{sep}mmm`
fn timestamp(secs: f64, sep: char) -> String {
    let ms = (secs.max(0.0) * 1000.0).round() as u64;
    format!("{:02}:{:02}:{:02}{sep}{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

/// The transcript of `file` in `format`. JSON is one object on one line.
pub fn render(transcript: &Transcript, file: &str, format: Format) -> String {
    let mut out = String::new();
    match format {
        Format::Txt => {
            for s in &transcript.segments {
                let _ = writeln!(out, "{}", s.text);
            }
        }
        Format::Srt => {
            for (i, s) in transcript.segments.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{}\n{} --> {}\n{}\n",
                    i + 1,
                    timestamp(s.start, ','),
                    timestamp(s.end, ','),
                    s.text
                );
            }
        }
        Format::Vtt => {
            out.push_str("WEBVTT\n\n");
            for s in &transcript.segments {
                let _ =
                    writeln!(out, "{} --> {}\n{}\n", timestamp(s.start, '.'), timestamp(s.end, '.'), s.text);
            }
        }
        Format::Json => {
            let value = serde_json::json!({
                "file": file,
                "text": transcript.text,
                "language": transcript.language,
                "segments": transcript.segments,
            });
            let _ = writeln!(out, "{value}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::speech::Segment;

    fn sample() -> Transcript {
        Transcript {
            text: "Hello there. General Kenobi.".into(),
            language: "en".into(),
            segments: vec![
                Segment::new(0.0, 1.5, "Hello there."),
                Segment::new(3661.25, 3662.0, "General Kenobi."),
            ],
        }
    }

    #[test]
    fn srt_bytes() {
        assert_eq!(
            render(&sample(), "a.wav", Format::Srt),
            "1\n00:00:00,000 --> 00:00:01,500\nHello there.\n\n2\n01:01:01,250 --> 01:01:02,000\nGeneral Kenobi.\n\n"
        );
    }

    #[test]
    fn vtt_bytes() {
        assert_eq!(
            render(&sample(), "a.wav", Format::Vtt),
            "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello there.\n\n01:01:01.250 --> 01:01:02.000\nGeneral Kenobi.\n\n"
        );
    }

    #[test]
    fn txt_and_json() {
        assert_eq!(render(&sample(), "a.wav", Format::Txt), "Hello there.\nGeneral Kenobi.\n");
        let json: serde_json::Value =
            serde_json::from_str(&render(&sample(), "a.wav", Format::Json)).expect("valid JSON");
        assert_eq!(json["file"], "a.wav");
        assert_eq!(json["language"], "en");
        assert_eq!(json["segments"][1]["start"], 3661.25);
        assert_eq!(json["segments"][1]["text"], "General Kenobi.");
    }
}
