//! Word error rate, scored as the public evaluation set's README says: lower-case, strip
//! punctuation, spell digits as words ("10" → "ten"), "mr" → "mister", collapse whitespace,
//! then word-level edit distance.

const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] =
    ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];

/// An integer in words ("21" → "twenty one").
pub fn number_words(n: u64) -> String {
    match n {
        0..=19 => ONES[n as usize].to_owned(),
        20..=99 => {
            let t = TENS[(n / 10) as usize];
            if n.is_multiple_of(10) { t.to_owned() } else { format!("{t} {}", ONES[(n % 10) as usize]) }
        }
        100..=999 => {
            let rest =
                if n.is_multiple_of(100) { String::new() } else { format!(" {}", number_words(n % 100)) };
            format!("{} hundred{rest}", ONES[(n / 100) as usize])
        }
        _ => {
            let (scale, word) = if n >= 1_000_000_000 {
                (1_000_000_000, "billion")
            } else if n >= 1_000_000 {
                (1_000_000, "million")
            } else {
                (1000, "thousand")
            };
            let rest =
                if n.is_multiple_of(scale) { String::new() } else { format!(" {}", number_words(n % scale)) };
            format!("{} {word}{rest}", number_words(n / scale))
        }
    }
}

/// The phrase with number words written as digits, the way Whisper writes them ("ten of
/// clubs" → "10 of clubs", "twenty five" → "25"), or `None` when it has no number words.
pub fn with_digits(phrase: &str) -> Option<String> {
    let words: Vec<&str> = phrase.split_whitespace().collect();
    let unit = |w: &str| ONES.iter().position(|u| u.eq_ignore_ascii_case(w));
    let tens = |w: &str| TENS.iter().skip(2).position(|t| t.eq_ignore_ascii_case(w)).map(|t| (t + 2) * 10);
    let mut out: Vec<String> = Vec::new();
    let mut changed = false;
    let mut i = 0;
    while i < words.len() {
        if let Some(mut n) = tens(words[i]) {
            if let Some(u) = words.get(i + 1).and_then(|w| unit(w)).filter(|u| (1..10).contains(u)) {
                n += u;
                i += 1;
            }
            out.push(n.to_string());
            changed = true;
        } else if let Some(u) = unit(words[i]) {
            out.push(u.to_string());
            changed = true;
        } else {
            out.push(words[i].to_owned());
        }
        i += 1;
    }
    changed.then(|| out.join(" "))
}

/// The normalised words of a text.
pub fn normalise(text: &str) -> Vec<String> {
    words(text, true)
}

/// Lower-cased words with punctuation stripped; with `spell`, numbers spelled out and "mr"
/// written "mister" too (the set's normalisation; without it, the "raw" WER of its README).
fn words(text: &str, spell: bool) -> Vec<String> {
    let lower = text.to_lowercase();
    let cleaned: String =
        lower.chars().map(|c| if c.is_alphanumeric() || c == '\'' { c } else { ' ' }).collect();
    let mut words = Vec::new();
    for w in cleaned.split_whitespace() {
        let w = w.trim_matches('\'');
        if w.is_empty() {
            continue;
        }
        if let Some(n) = w.parse::<u64>().ok().filter(|_| spell) {
            words.extend(number_words(n).split(' ').map(str::to_owned));
        } else if spell && w == "mr" {
            words.push("mister".to_owned());
        } else {
            words.push(w.replace('\'', ""));
        }
    }
    words
}

/// Edit distance between two sequences (of words for WER, of characters elsewhere).
pub fn edit_distance<T: PartialEq>(reference: &[T], hypothesis: &[T]) -> usize {
    let mut prev: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut cur = vec![i + 1; hypothesis.len() + 1];
        for (j, h) in hypothesis.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(r != h)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[hypothesis.len()]
}

/// Errors and reference length for one pair; sum them over a set for the set's WER.
pub fn errors(reference: &str, hypothesis: &str, normalised: bool) -> (usize, usize) {
    let r = words(reference, normalised);
    (edit_distance(&r, &words(hypothesis, normalised)), r.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_titles_are_spelled_out() {
        assert_eq!(normalise("Go forward 10 meters."), ["go", "forward", "ten", "meters"]);
        assert_eq!(normalise("Mr. Dashwood's 21st"), ["mister", "dashwoods", "21st"]);
        assert_eq!(number_words(1999), "one thousand nine hundred ninety nine");
    }

    #[test]
    fn edit_distance_counts_substitutions_insertions_deletions() {
        let w = |s: &str| normalise(s);
        assert_eq!(edit_distance(&w("ten of clubs"), &w("10 of clubs")), 0);
        assert_eq!(edit_distance(&w("four queen of clubs"), &w("for queen of clothes")), 2);
        assert_eq!(edit_distance(&w("a b c"), &w("a c")), 1);
        assert_eq!(edit_distance(&w("a c"), &w("a b c")), 1);
        assert_eq!(errors("ten of clubs", "10 of clubs.", false), (1, 3));
    }

    #[test]
    fn number_words_become_digits() {
        assert_eq!(with_digits("ten of clubs").as_deref(), Some("10 of clubs"));
        assert_eq!(with_digits("go forward twenty five meters").as_deref(), Some("go forward 25 meters"));
        assert_eq!(with_digits("queen of hearts"), None);
    }
}
