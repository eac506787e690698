//! How alike a transcript and a phrase are as written and as said: character edit distance on
//! normalised words ("10" = "ten", case and punctuation ignored) and edit distance on a sound
//! code of each word, so that "cloves" still lands near "clubs".

use crate::speech::wer;

/// A phrase or transcript prepared for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spoken {
    /// Normalised words joined by single spaces.
    pub words: String,
    /// The sound code of each word, joined by single spaces.
    pub sounds: String,
}

impl Spoken {
    pub fn new(text: &str) -> Self {
        let words = wer::normalise(text);
        let sounds = words.iter().map(|w| sound_code(w)).collect::<Vec<_>>().join(" ");
        Self { words: words.join(" "), sounds }
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// 0 (nothing alike) to 1 (the same words): the mean of spelling and sound similarity.
    pub fn similarity(&self, other: &Self) -> f32 {
        0.5 * ratio(&self.words, &other.words) + 0.5 * ratio(&self.sounds, &other.sounds)
    }
}

/// 1 − edit distance ÷ the longer length, on characters.
fn ratio(a: &str, b: &str) -> f32 {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 1.0;
    }
    1.0 - wer::edit_distance(&a, &b) as f32 / longest as f32
}

/// A Soundex-like code without the length cap: the first letter, then one digit per run of
/// consonants that sound alike (b f p v → 1, c g j k q s x z → 2, d t → 3, l → 4, m n → 5,
/// r → 6); vowels, h, w and y only separate runs.
pub fn sound_code(word: &str) -> String {
    let class = |c: char| match c {
        'b' | 'f' | 'p' | 'v' => Some('1'),
        'c' | 'g' | 'j' | 'k' | 'q' | 's' | 'x' | 'z' => Some('2'),
        'd' | 't' => Some('3'),
        'l' => Some('4'),
        'm' | 'n' => Some('5'),
        'r' => Some('6'),
        _ => None,
    };
    let mut chars = word.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase());
    let Some(first) = chars.next() else { return String::new() };
    let mut code = first.to_ascii_uppercase().to_string();
    let mut last = class(first);
    for c in chars {
        let k = class(c);
        if let Some(d) = k.filter(|_| k != last) {
            code.push(d);
        }
        // h and w do not separate two alike consonants; vowels do.
        if !matches!(c, 'h' | 'w') {
            last = k;
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sound_codes_hear_alike_words_alike() {
        assert_eq!(sound_code("clubs"), sound_code("cloves"));
        assert_eq!(sound_code("robert"), "R163");
        assert_ne!(sound_code("hearts"), sound_code("spades"));
    }

    #[test]
    fn numbers_compare_as_words() {
        let a = Spoken::new("Go forward 10 meters.");
        let b = Spoken::new("go forward ten meters");
        assert!((a.similarity(&b) - 1.0).abs() < 1e-6);
        let c = Spoken::new("Queen of Cloves");
        assert!(c.similarity(&Spoken::new("queen of clubs")) > c.similarity(&Spoken::new("queen of hearts")));
        assert!(Spoken::new("").similarity(&Spoken::new("five")) < 0.01);
    }
}
