//! What images.toml may refer to in a Dockerfile: its stage names (`target`) and the `ARG`s it
//! declares (`build_args`). Read with BuildKit's rules for these two instructions only.

use std::collections::BTreeSet;

/// The stage names and declared ARGs of a Dockerfile.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Facts {
    /// `FROM … AS name`, lowercased (BuildKit matches `--target` case-insensitively).
    pub(crate) stages: Vec<String>,
    pub(crate) args: BTreeSet<String>,
}

/// ARGs BuildKit defines without a declaration: the proxy variables and its own switches.
const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
    "SOURCE_DATE_EPOCH",
];

pub(crate) fn is_predefined_arg(name: &str) -> bool {
    PREDEFINED_ARGS.contains(&name) || name.starts_with("BUILDKIT_")
}

/// Parses the instructions of a Dockerfile: lines joined at a trailing escape character
/// (`\`, or the one of a `# escape=` directive), comments skipped.
pub(crate) fn facts(text: &str) -> Facts {
    let escape = text
        .lines()
        .take_while(|l| l.trim_start().starts_with('#'))
        .find_map(|l| {
            let directive = l.trim_start().trim_start_matches('#').trim();
            let (key, value) = directive.split_once('=')?;
            (key.trim().eq_ignore_ascii_case("escape")).then(|| value.trim().chars().next())?
        })
        .unwrap_or('\\');
    let mut facts = Facts::default();
    let mut instruction = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        // Comments, also inside a continued instruction, are dropped.
        if trimmed.starts_with('#') {
            continue;
        }
        match trimmed.strip_suffix(escape) {
            Some(head) => {
                instruction.push_str(head);
                instruction.push(' ');
            }
            None => {
                instruction.push_str(trimmed);
                note(&mut facts, &instruction);
                instruction.clear();
            }
        }
    }
    if !instruction.is_empty() {
        note(&mut facts, &instruction);
    }
    facts
}

fn note(facts: &mut Facts, instruction: &str) {
    let mut words = instruction.split_whitespace();
    let Some(keyword) = words.next() else {
        return;
    };
    if keyword.eq_ignore_ascii_case("FROM") {
        let words: Vec<&str> = words.filter(|w| !w.starts_with("--")).collect();
        if let [_, as_kw, name, ..] = words.as_slice() {
            if as_kw.eq_ignore_ascii_case("AS") {
                facts.stages.push(name.to_ascii_lowercase());
            }
        }
    } else if keyword.eq_ignore_ascii_case("ARG") {
        for word in words {
            let name = word.split_once('=').map_or(word, |(n, _)| n);
            if !name.is_empty() {
                facts.args.insert(name.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_and_args_are_found() {
        let text = "# syntax=docker/dockerfile:1\nARG BASE_IMAGE=debian:trixie-slim\n\
                    FROM --platform=$BUILDPLATFORM ${BASE_IMAGE} AS Base\n\
                    ARG WITH_TORCH=0 \\\n    TORCH_SPEC\n\
                    # ARG COMMENTED\n\
                    from base as deps\n\
                    RUN echo ARG NOT_AN_ARG\n\
                    FROM deps\n";
        let f = facts(text);
        assert_eq!(f.stages, ["base", "deps"]);
        assert_eq!(
            f.args.iter().map(String::as_str).collect::<Vec<_>>(),
            ["BASE_IMAGE", "TORCH_SPEC", "WITH_TORCH"]
        );
    }

    #[test]
    fn the_escape_directive_is_honoured() {
        let f = facts("# escape=`\nFROM x AS a\nARG ONE `\n  TWO\n");
        assert_eq!(f.stages, ["a"]);
        assert!(f.args.contains("ONE") && f.args.contains("TWO"));
    }

    #[test]
    fn predefined_args_need_no_declaration() {
        assert!(is_predefined_arg("https_proxy"));
        assert!(is_predefined_arg("BUILDKIT_INLINE_CACHE"));
        assert!(!is_predefined_arg("TORCH_SPEC"));
    }
}
