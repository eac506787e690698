//! Queries that add and subtract meanings: `beach - people`, `"a red car" + 0.5*"at night"`.

/// (weight, text) terms of a query. Terms are quoted text or bare words; between them `+` or
/// `-` (with spaces around a bare-word operator, so that "t-shirt" stays one word); a term may
/// carry a weight, `0.5*"…"`.
pub fn parse_terms(query: &str) -> Result<Vec<(f32, String)>, String> {
    let mut terms = Vec::new();
    let chars: Vec<char> = query.chars().collect();
    let mut i = 0;
    let mut sign = 1.0f32;
    let skip_spaces = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_spaces(&mut i);
        if i >= chars.len() {
            if !terms.is_empty() {
                return Err("nothing after the last + or -".into());
            }
            break;
        }
        // An optional weight: digits and a dot, then '*'.
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
            i += 1;
        }
        let mut weight = 1.0f32;
        if i > start && i < chars.len() && chars[i] == '*' {
            let text: String = chars[start..i].iter().collect();
            weight = text.parse().map_err(|_| format!("\"{text}\" is not a weight"))?;
            i += 1;
            skip_spaces(&mut i);
        } else {
            i = start;
        }
        let text = if i < chars.len() && chars[i] == '"' {
            let close = chars[i + 1..].iter().position(|&c| c == '"').ok_or("a quote is not closed")?;
            let t: String = chars[i + 1..i + 1 + close].iter().collect();
            i += close + 2;
            t
        } else {
            let mut end = i;
            while end < chars.len() {
                let op = (chars[end] == '+' || chars[end] == '-')
                    && (end == 0 || chars[end - 1].is_whitespace())
                    && chars.get(end + 1).is_none_or(|c| c.is_whitespace() || *c == '"');
                if op {
                    break;
                }
                end += 1;
            }
            let t: String = chars[i..end].iter().collect();
            i = end;
            t
        };
        let text = text.trim().to_owned();
        if text.is_empty() {
            return Err("an empty term".into());
        }
        terms.push((sign * weight, text));
        skip_spaces(&mut i);
        if i >= chars.len() {
            break;
        }
        sign = match chars[i] {
            '+' => 1.0,
            '-' => -1.0,
            c => return Err(format!("expected + or - between terms, found '{c}'")),
        };
        i += 1;
    }
    if terms.is_empty() {
        return Err("the query is empty".into());
    }
    Ok(terms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_differences_parse() {
        assert_eq!(parse_terms("a cat").expect("ok"), [(1.0, "a cat".to_owned())]);
        assert_eq!(
            parse_terms("beach - people").expect("ok"),
            [(1.0, "beach".into()), (-1.0, "people".into())]
        );
        assert_eq!(
            parse_terms("\"a red car\" + 0.5*\"at night\"").expect("ok"),
            [(1.0, "a red car".into()), (0.5, "at night".into())]
        );
        assert_eq!(parse_terms("a t-shirt").expect("ok"), [(1.0, "a t-shirt".into())]);
        assert!(parse_terms("\"open").is_err());
        assert!(parse_terms("  ").is_err());
        assert!(parse_terms("cat -").is_err());
    }
}
