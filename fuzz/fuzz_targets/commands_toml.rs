//! The command file parser on arbitrary text: every outcome is a command set or an error that
//! names a line inside the text; a parsed set writes back to TOML that parses to the same set.
#![no_main]

use crossmodal::commands::{CommandSet, CommandsError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match CommandSet::parse(text, "fuzz.toml") {
        Ok(set) => {
            assert!(!set.is_empty());
            let again = CommandSet::parse(&set.to_toml(), "again.toml").expect("a written set parses");
            let names = |s: &CommandSet| s.commands.iter().map(|c| (c.name.clone(), c.phrases.clone(), c.action.clone())).collect::<Vec<_>>();
            assert_eq!(names(&set), names(&again));
        }
        Err(CommandsError::Syntax { line, .. } | CommandsError::Invalid { line, .. }) => {
            assert!(line >= 1 && line <= text.lines().count().max(1) + 1, "line {line} is outside the text");
        }
        Err(_) => {}
    }
});
