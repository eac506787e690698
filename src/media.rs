//! What kind of media a file is, by its name: the one list of endings per kind, matching what
//! the decoders built into this program read (symphonia's formats, the `image` crate's features).

use std::path::Path;

/// Audio the decoder reads: WAV, MP3, FLAC, Ogg Vorbis, MP4/M4A with AAC.
pub const AUDIO_EXTENSIONS: [&str; 8] = ["wav", "mp3", "flac", "ogg", "oga", "m4a", "mp4", "aac"];
/// Images the decoder reads (the `image` crate's png, jpeg, webp, bmp and gif features).
pub const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "webp", "bmp", "gif"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    Audio,
    Image,
    Folder,
    Other,
}

fn has_extension(path: &Path, list: &[&str]) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| list.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

pub fn is_audio(path: &Path) -> bool {
    has_extension(path, &AUDIO_EXTENSIONS)
}

pub fn is_image(path: &Path) -> bool {
    has_extension(path, &IMAGE_EXTENSIONS)
}

/// A folder, or a file's kind by its ending.
pub fn kind(path: &Path) -> Media {
    if path.is_dir() {
        Media::Folder
    } else if is_audio(path) {
        Media::Audio
    } else if is_image(path) {
        Media::Image
    } else {
        Media::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endings_decide_the_kind_whatever_their_case() {
        assert_eq!(kind(Path::new("talk.M4A")), Media::Audio);
        assert_eq!(kind(Path::new("cat.WebP")), Media::Image);
        assert_eq!(kind(Path::new("notes.txt")), Media::Other);
        assert_eq!(kind(Path::new("no-ending")), Media::Other);
    }

    #[test]
    fn every_image_ending_is_decoded_for_real() {
        // One tiny picture in each format, written by the `image` crate and read back by the
        // gallery's loader: an ending on the list that the build cannot decode fails here.
        let dir = tempfile::tempdir().expect("temp");
        let picture = image::RgbImage::from_fn(8, 6, |x, y| image::Rgb([x as u8 * 30, y as u8 * 40, 90]));
        for ext in IMAGE_EXTENSIONS {
            let path = dir.path().join(format!("p.{ext}"));
            picture.save(&path).unwrap_or_else(|e| panic!("{ext}: {e}"));
            let back = crate::gallery::load_image(&path).unwrap_or_else(|e| panic!("{ext}: {e}"));
            assert_eq!(back.dimensions(), (8, 6), "{ext}");
        }
    }
}
