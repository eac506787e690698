//! Phrases from a JSGF grammar's rules (`<rank> = ace | two | …;`), so a grammar such as the
//! public set's `cards.gram` becomes a command set without retyping it.

/// The alternatives of one rule, in order. Optional parts (`[ of ]`) and references to other
/// rules are kept as written; the simple word lists that command sets need come out clean.
pub fn rule_alternatives(grammar: &str, rule: &str) -> Result<Vec<String>, String> {
    let head = format!("<{rule}>");
    let mut rest = grammar;
    while let Some(at) = rest.find(&head) {
        let after = rest[at + head.len()..].trim_start();
        if let Some(body) = after.strip_prefix('=') {
            let end = body.find(';').ok_or_else(|| format!("rule <{rule}> has no closing ';'"))?;
            let alternatives: Vec<String> = body[..end]
                .split('|')
                .map(|a| a.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|a| !a.is_empty())
                .collect();
            return if alternatives.is_empty() {
                Err(format!("rule <{rule}> is empty"))
            } else {
                Ok(alternatives)
            };
        }
        rest = &rest[at + head.len()..];
    }
    Err(format!("the grammar has no rule <{rule}>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRAMMAR: &str = "#JSGF v1.0;\ngrammar cards;\npublic <cards> = <card> | <rank> <rank>;\n<card> = <rank> [ of ] <suits>;\n<suits> = clubs | hearts ;\n<rank> = ace | two\n | lady;";

    #[test]
    fn rules_give_their_alternatives() {
        assert_eq!(rule_alternatives(GRAMMAR, "suits").expect("rule"), ["clubs", "hearts"]);
        assert_eq!(rule_alternatives(GRAMMAR, "rank").expect("rule"), ["ace", "two", "lady"]);
        assert!(rule_alternatives(GRAMMAR, "colour").expect_err("none").contains("<colour>"));
    }
}
