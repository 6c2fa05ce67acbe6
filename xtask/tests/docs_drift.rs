//! Docs cannot drift from the CLI: every `cargo xtask …` line in README.md, docs/*.md and the
//! `run:` lines of .github/ (workflows and actions) goes through the real clap definition. A
//! command (`cargo xtask build cpu --cache gha`) must parse with `Cli::try_parse_from`; a
//! synopsis (`cargo xtask sizes [VARIANT…] [--image REF…]`) must name real subcommands and flags.
//!
//! Flags the workflows already use but another issue has yet to implement are listed in
//! [`PENDING`] with the issue number; an entry fails the test once clap knows the flag, so the
//! list cannot go stale.

#![allow(clippy::disallowed_methods, clippy::disallowed_macros)] // tests run programs and print as a user would

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::CommandFactory;
use std::path::{Path, PathBuf};

use xtask::cli::Cli;

/// The whole command line: `cargo xtask`'s, with `bench` as the bench binary defines it (the
/// everyday binary passes its arguments through).
fn cli() -> clap::Command {
    let bench = xtask_bench::cli::Cli::command().name("bench");
    Cli::command().mut_subcommand("bench", |_| bench)
}

/// Flags used ahead of their implementation: (subcommand, flag, takes a value, issue).
const PENDING: &[(&str, &str, bool, u32)] = &[];

/// Stands in for shell expansions (`$VARIANT`, `${{ matrix.variant }}`, `"$@"`).
const PLACEHOLDER: &str = "PLACEHOLDER";

/// A `cargo xtask …` line found in a file.
#[derive(Debug, Clone, PartialEq)]
struct Found {
    file: PathBuf,
    line: usize,
    /// The words after `cargo xtask`.
    words: Vec<String>,
    /// A usage synopsis (`[…]`, `…`, `<…>`, metavariables) rather than a command.
    synopsis: bool,
    /// In running text (an inline code span), where `cargo xtask scan --from-report` may name a
    /// flag without its value.
    inline: bool,
}

/// What checking one line concluded.
#[derive(Debug, PartialEq)]
enum Verdict {
    Ok,
    /// Parses once the pending flags (issue numbers) are left out.
    Pending(Vec<(String, u32)>),
    Broken(String),
}

/// Splits a shell command into words: quotes removed, expansions replaced by [`PLACEHOLDER`],
/// ending at a comment or at `|`, `;`, `&&`, `||`, `>`, `<`, `)` or `}` outside quotes.
fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Some(q) if c == q => {
                quote = None;
                i += 1;
                continue;
            }
            Some('\'') => {
                word.push(c);
                i += 1;
                continue;
            }
            _ => {}
        }
        if c == '$' {
            // $NAME, ${…}, ${{ … }}, $(…), "$@"
            let rest: String = chars[i + 1..].iter().collect();
            let skip = if rest.starts_with("{{") {
                rest.find("}}").map(|e| e + 3)
            } else if rest.starts_with('{') {
                rest.find('}').map(|e| e + 2)
            } else if rest.starts_with('(') {
                rest.find(')').map(|e| e + 2)
            } else if rest.starts_with(['@', '*', '#', '?']) {
                Some(2)
            } else {
                Some(
                    1 + rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .count(),
                )
            };
            word.push_str(PLACEHOLDER);
            in_word = true;
            i += skip.unwrap_or(chars.len());
            continue;
        }
        if quote.is_none() {
            if c == '"' || c == '\'' {
                quote = Some(c);
                in_word = true;
                i += 1;
                continue;
            }
            if c == '\\' && i + 1 < chars.len() {
                // `\|` in a Markdown table cell is a pipe in the text, not a shell operator.
                word.push(chars[i + 1]);
                in_word = true;
                i += 2;
                continue;
            }
            if c.is_whitespace() {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                i += 1;
                continue;
            }
            if c == '<' {
                // `<variant>` in a synopsis is a placeholder, not a redirection.
                let rest: String = chars[i..]
                    .iter()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                if let Some(end) = rest.find('>').filter(|&e| e > 1) {
                    word.push_str(&rest[..=end]);
                    in_word = true;
                    i += rest[..=end].chars().count();
                    continue;
                }
            }
            let at_word_start = !in_word;
            // A backtick ends the command: it closes the code span the command is quoted in.
            if (c == '#' && at_word_start)
                || matches!(c, '|' | ';' | '&' | '>' | '<' | ')' | '}' | '`')
            {
                break;
            }
        }
        word.push(c);
        in_word = true;
        i += 1;
    }
    if in_word {
        words.push(word);
    }
    words
}

/// A synopsis rather than a runnable command: optional parts, ellipses, `<placeholders>` or
/// metavariables such as VARIANT, FILE, REF.
fn is_synopsis(words: &[String]) -> bool {
    words.iter().any(|w| {
        w.contains(['[', ']', '…', '<'])
            || w.contains("...")
            || (w.len() > 1
                && !w.contains(PLACEHOLDER)
                && w.chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
                && w.chars().any(|c| c.is_ascii_uppercase()))
    })
}

/// Every `cargo xtask` in `text` (one line of a file), as the words that follow it.
fn commands_in(text: &str) -> Vec<Vec<String>> {
    text.match_indices("cargo xtask")
        .filter(|(at, _)| {
            // `cargo xtask` as words, not part of another name.
            let before = text[..*at].chars().last();
            let after = text[at + "cargo xtask".len()..].chars().next();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_')
                && after.is_none_or(|c| c.is_whitespace() || c == '`')
        })
        .map(|(at, _)| shell_words(&text[at + "cargo xtask".len()..]))
        .collect()
}

/// `cargo xtask` lines of a Markdown file: in fenced code blocks (with `\` continuations joined,
/// a `$ ` prompt allowed) and in inline code spans.
fn markdown(file: &Path, text: &str) -> Vec<Found> {
    let mut out = Vec::new();
    let mut in_block = false;
    let mut pending: Option<(usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        let number = n + 1;
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            pending = None;
            continue;
        }
        let inline = !in_block;
        let spans: Vec<(usize, String)> = if in_block {
            let (start, mut joined) = pending.take().unwrap_or((number, String::new()));
            let body = line.trim();
            if let Some(cont) = body.strip_suffix('\\') {
                joined.push_str(cont);
                joined.push(' ');
                pending = Some((start, joined));
                continue;
            }
            joined.push_str(body);
            vec![(start, joined)]
        } else {
            // Inline code spans: text between pairs of backticks.
            line.split('`')
                .enumerate()
                .filter(|(i, _)| i % 2 == 1)
                .map(|(_, s)| (number, s.to_string()))
                .collect()
        };
        for (start, span) in spans {
            for words in commands_in(&span) {
                out.push(Found {
                    file: file.to_path_buf(),
                    line: start,
                    synopsis: is_synopsis(&words),
                    inline,
                    words,
                });
            }
        }
    }
    out
}

/// `cargo xtask` lines in the `run:` steps of a workflow or composite action (inline `run: …`
/// and block scalars `run: |`).
fn workflow(file: &Path, text: &str) -> Vec<Found> {
    let mut out = Vec::new();
    let mut push = |line: usize, text: &str| {
        for words in commands_in(text) {
            out.push(Found {
                file: file.to_path_buf(),
                line,
                synopsis: false,
                inline: false,
                words,
            });
        }
    };
    let mut block_indent: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let body = line.trim_start().trim_start_matches("- ");
        if let Some(min) = block_indent {
            if line.trim().is_empty() || indent > min {
                push(n + 1, line);
                continue;
            }
            block_indent = None;
        }
        if let Some(value) = body.strip_prefix("run:") {
            let value = value.trim();
            if value.starts_with(['|', '>']) {
                block_indent = Some(indent);
            } else {
                push(n + 1, value);
            }
        }
    }
    out
}

/// The `run:` steps of a workflow that run no `cargo xtask` command: (line, step name).
fn setup_steps(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut name = String::new();
    let mut run: Option<(usize, usize, bool)> = None; // (line, indent, saw cargo xtask)
    let mut finish = |run: &mut Option<(usize, usize, bool)>, name: &str| {
        if let Some((line, _, false)) = run.take() {
            out.push((line, name.to_string()));
        }
    };
    for (n, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let body = line.trim_start();
        if let Some((_, run_indent, seen)) = &mut run {
            if line.trim().is_empty() || indent > *run_indent {
                *seen |= !commands_in(line).is_empty();
                continue;
            }
            finish(&mut run, &name);
        }
        if body.starts_with("- ") {
            name.clear();
        }
        let body = body.trim_start_matches("- ");
        if let Some(value) = body.strip_prefix("name:") {
            name = value.trim().trim_matches('"').to_string();
        }
        if let Some(value) = body.strip_prefix("run:") {
            let value = value.trim();
            run = Some((n + 1, indent, !commands_in(value).is_empty()));
            if !value.starts_with(['|', '>']) {
                finish(&mut run, &name);
            }
        }
    }
    finish(&mut run, &name);
    out
}

/// The long flags a (sub)command accepts, and its subcommands.
fn flags_of(cmd: &clap::Command) -> Vec<String> {
    let mut flags: Vec<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    flags.extend(["--help".to_string(), "--version".into()]);
    flags
}

/// Walks `words` down the subcommand tree: the deepest subcommand named, and the words after it.
fn subcommand<'a>(root: &'a clap::Command, words: &[String]) -> (Vec<&'a clap::Command>, usize) {
    let mut path = vec![root];
    let mut i = 0;
    while let Some(word) = words.get(i) {
        let current = *path.last().expect("the root is in the path");
        match current.find_subcommand(word) {
            Some(sub) => {
                path.push(sub);
                i += 1;
            }
            None if word.starts_with('-') && !current.has_subcommands() => break,
            // Global options before the subcommand (`--config FILE build …`).
            None if word.starts_with("--") => i += 1,
            None => break,
        }
    }
    (path, i)
}

/// Every flag a synopsis names exists on its subcommand (or is global).
fn check_flags(root: &clap::Command, path: &[&clap::Command], words: &[String]) -> Verdict {
    let mut known = flags_of(root);
    for cmd in &path[1..] {
        known.extend(flags_of(cmd));
    }
    let name = path[1..]
        .iter()
        .map(|c| c.get_name())
        .collect::<Vec<_>>()
        .join(" ");
    for word in words {
        let Some(flag) = word.trim_start_matches(['[', '(']).strip_prefix("--") else {
            continue;
        };
        let flag: String = flag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if flag.is_empty() {
            continue; // `[-- FILTER]`
        }
        let flag = format!("--{flag}");
        if !known.contains(&flag) {
            return Verdict::Broken(format!("`cargo xtask {name}` has no `{flag}`"));
        }
    }
    Verdict::Ok
}

fn check(found: &Found) -> Verdict {
    let root = cli();
    // `cargo xtask` alone, or `cargo xtask <command>`: the tool itself is meant.
    if found.words.is_empty() || (found.synopsis && found.words[0].starts_with('<')) {
        return Verdict::Ok;
    }
    let (path, _) = subcommand(&root, &found.words);
    let Some(sub) = path.get(1) else {
        return Verdict::Broken(format!(
            "no subcommand of `cargo xtask` in `{}`",
            found.words.join(" ")
        ));
    };
    let name = sub.get_name().to_string();
    if found.synopsis {
        return check_flags(&root, &path, &found.words);
    }
    // A command: leave out the flags still pending in another issue, then parse it for real.
    let mut words = found.words.clone();
    let mut pending = Vec::new();
    for &(cmd, flag, takes_value, issue) in PENDING {
        if cmd != name {
            continue;
        }
        if sub
            .get_arguments()
            .any(|a| a.get_long() == flag.strip_prefix("--"))
        {
            return Verdict::Broken(format!(
                "`cargo xtask {cmd} {flag}` exists now: remove it from PENDING in \
                 xtask/src/docs_drift.rs (issue {issue})"
            ));
        }
        while let Some(at) = words
            .iter()
            .position(|w| w == flag || w.starts_with(&format!("{flag}=")))
        {
            let with_value = takes_value && words[at] == flag && at + 1 < words.len();
            words.drain(at..at + 1 + usize::from(with_value));
            pending.push((format!("{cmd} {flag}"), issue));
        }
    }
    let argv = std::iter::once("cargo xtask".to_string()).chain(words.iter().cloned());
    match cli().try_get_matches_from(argv) {
        Ok(_) => {}
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {}
        // A value only the shell knows (`--cache "$CACHE"`, `--platform "$PLATFORM"`) is checked
        // when the step runs.
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::InvalidValue | ErrorKind::ValueValidation
            ) && matches!(e.get(ContextKind::InvalidValue),
                    Some(ContextValue::String(v)) if v.contains(PLACEHOLDER)) => {}
        // Running text may name a flag without its value (`cargo xtask scan --from-report`).
        Err(e)
            if found.inline
                && (e.kind() == ErrorKind::MissingRequiredArgument
                    || (e.kind() == ErrorKind::InvalidValue
                        && matches!(e.get(ContextKind::InvalidValue),
                            Some(ContextValue::String(v)) if v.is_empty()))) =>
        {
            return check_flags(&root, &path, &words);
        }
        Err(e) => {
            let msg = e.to_string();
            let first = msg
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ");
            return Verdict::Broken(first.to_string());
        }
    }
    if pending.is_empty() {
        Verdict::Ok
    } else {
        Verdict::Pending(pending)
    }
}

/// Checks every file; returns the broken lines as `file:line: cargo xtask …: why` and the
/// pending flags used, and prints where those are (run the test with `--nocapture`).
fn broken_lines(files: &[PathBuf], root: &Path) -> Vec<String> {
    check_files(files, root).0
}

fn check_files(files: &[PathBuf], root: &Path) -> (Vec<String>, Vec<String>) {
    let mut broken = Vec::new();
    let mut used = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let rel = file.strip_prefix(root).unwrap_or(file);
        let found = if file.extension().is_some_and(|e| e == "md") {
            markdown(rel, &text)
        } else {
            workflow(rel, &text)
        };
        for f in found {
            let place = format!(
                "{}:{}: cargo xtask {}",
                rel.display(),
                f.line,
                f.words.join(" ")
            );
            match check(&f) {
                Verdict::Ok => {}
                Verdict::Pending(flags) => {
                    for (flag, issue) in flags {
                        eprintln!("pending: {place}: `{flag}` (issue {issue})");
                        used.push(flag);
                    }
                }
                Verdict::Broken(why) => broken.push(format!("{place}: {why}")),
            }
        }
    }
    (broken, used)
}

fn words(s: &str) -> Vec<String> {
    shell_words(s)
}

fn root() -> PathBuf {
    xtask::util::project_root().into_std_path_buf()
}

/// README.md, docs/*.md, and the YAML files of .github/ (workflows and actions).
fn documented_files() -> Vec<PathBuf> {
    let root = root();
    let mut files = vec![root.join("README.md")];
    let mut add_dir = |dir: PathBuf, ext: &[&str], recurse: bool| {
        fn walk(dir: &Path, ext: &[&str], recurse: bool, out: &mut Vec<PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            let mut entries: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
            entries.sort();
            for path in entries {
                if path.is_dir() && recurse {
                    walk(&path, ext, recurse, out);
                } else if path
                    .extension()
                    .is_some_and(|e| ext.iter().any(|x| e == *x))
                {
                    out.push(path);
                }
            }
        }
        walk(&dir, ext, recurse, &mut files);
    };
    add_dir(root.join("docs"), &["md"], false);
    add_dir(root.join(".github"), &["yml", "yaml"], true);
    files
}

#[test]
fn shell_words_handle_quotes_expansions_and_operators() {
    assert_eq!(
        words(r#" build "$VARIANT" --cache gha --progress plain"#),
        [
            "build",
            "PLACEHOLDER",
            "--cache",
            "gha",
            "--progress",
            "plain"
        ]
    );
    assert_eq!(
        words(" sizes ${{ matrix.variant }} --save 'sizes-${{ matrix.variant }}.json' # note"),
        [
            "sizes",
            "PLACEHOLDER",
            "--save",
            "sizes-${{ matrix.variant }}.json"
        ]
    );
    assert_eq!(
        words(" config --format json; echo EOF"),
        ["config", "--format", "json"]
    );
    assert_eq!(words(" test 2>&1 | tee log"), ["test", "2"]);
    assert_eq!(
        words(r" build VARIANT… \| --all"),
        ["build", "VARIANT…", "|", "--all"]
    );
    assert_eq!(words(r#" smoke "$@""#), ["smoke", "PLACEHOLDER"]);
    // In a message: "build the offline base with `cargo xtask base`, or …".
    assert_eq!(words(" base`, or make it"), ["base"]);
}

#[test]
fn markdown_lines_come_from_code_blocks_and_inline_code() {
    let md = "Run `cargo xtask build cpu` or `cargo xtask <command>`.\n\n```sh\n$ cargo xtask sizes \\\n    cpu --layers 5\nls\n```\n| `cargo xtask config [VARIANT…]` | x |\n";
    let found = markdown(Path::new("x.md"), md);
    let summary: Vec<(usize, String, bool)> = found
        .iter()
        .map(|f| (f.line, f.words.join(" "), f.synopsis))
        .collect();
    assert_eq!(
        summary,
        [
            (1, "build cpu".to_string(), false),
            (1, "<command>".to_string(), true),
            (4, "sizes cpu --layers 5".to_string(), false),
            (8, "config [VARIANT…]".to_string(), true),
        ]
    );
}

#[test]
fn workflow_run_lines_inline_and_block() {
    let yml = "steps:\n  - run: cargo xtask lint\n  - name: x\n    run: |\n      echo hi\n      cargo xtask build \"$V\" --cache gha\n  - uses: a/b@c\n    with:\n      run: not a step\n";
    let found = workflow(Path::new("w.yml"), yml);
    let summary: Vec<(usize, String)> = found.iter().map(|f| (f.line, f.words.join(" "))).collect();
    assert_eq!(
        summary,
        [
            (2, "lint".to_string()),
            (6, "build PLACEHOLDER --cache gha".to_string()),
        ]
    );
}

#[test]
fn commands_and_synopses_are_checked_against_clap() {
    let found = |line: &str| markdown(Path::new("x.md"), &format!("`{line}`")).remove(0);
    for ok in [
        "cargo xtask build cpu --cache gha",
        "cargo xtask lint --only hadolint --allow-missing",
        "cargo xtask sizes [VARIANT…] [--image REF…]",
        "cargo xtask bench rebuild <variant>",
        "cargo xtask test [--skip-rust] [-- FILTER]",
    ] {
        assert_eq!(check(&found(ok)), Verdict::Ok, "{ok}");
    }
    assert!(matches!(
        check(&found("cargo xtask build cpu --no-such-flag")),
        Verdict::Broken(why) if why.contains("--no-such-flag")
    ));
    assert!(matches!(
        check(&found("cargo xtask sizes [--no-such-flag]")),
        Verdict::Broken(why) if why == "`cargo xtask sizes` has no `--no-such-flag`"
    ));
    // `bench` lines are checked against the bench binary's own command line.
    assert_eq!(
        check(&found(
            "cargo xtask bench rebuild cpu --runs 3 --format markdown"
        )),
        Verdict::Ok
    );
    assert!(matches!(
        check(&found("cargo xtask bench rebuild cpu --no-such-flag")),
        Verdict::Broken(why) if why.contains("--no-such-flag")
    ));
    assert!(matches!(
        check(&found("cargo xtask bench pull [--no-such-flag]")),
        Verdict::Broken(why) if why == "`cargo xtask bench pull` has no `--no-such-flag`"
    ));
    assert!(matches!(
        check(&found("cargo xtask smok cpu")),
        Verdict::Broken(_)
    ));
    assert!(matches!(
        check(&found("cargo xtask build cpu --cache nowhere")),
        Verdict::Broken(why) if why.contains("nowhere")
    ));
    // Running text may name a flag without its value; the flag itself must exist.
    assert_eq!(check(&found("cargo xtask scan --from-report")), Verdict::Ok);
    let block = markdown(
        Path::new("x.md"),
        "```\ncargo xtask scan --from-report\n```\n",
    );
    assert!(matches!(check(&block[0]), Verdict::Broken(_)));
    // A value the shell fills in is checked when the step runs.
    let step = &workflow(
        Path::new("w.yml"),
        "- run: cargo xtask build cpu --cache \"$CACHE\"",
    )[0];
    assert_eq!(check(step), Verdict::Ok);
    // `build --registry`, pending until issue 12 landed, is a flag of clap's now.
    let step = &workflow(
        Path::new("w.yml"),
        "- run: cargo xtask build cpu --registry registry.example/org --push",
    )[0];
    assert_eq!(check(step), Verdict::Ok);
}

#[test]
fn every_cargo_xtask_line_in_the_docs_and_workflows_parses() {
    let files = documented_files();
    assert!(files.len() >= 4, "{files:?}");
    let (broken, used) = check_files(&files, &root());
    assert!(
        broken.is_empty(),
        "lines that do not parse with the CLI:\n{}",
        broken.join("\n")
    );
    // Every pending entry is still needed: used somewhere, and not known to clap yet.
    let root = cli();
    for &(cmd, flag, _, issue) in PENDING {
        let sub = root
            .find_subcommand(cmd)
            .expect("PENDING names a subcommand");
        assert!(
            !sub.get_arguments()
                .any(|a| a.get_long() == flag.strip_prefix("--")),
            "`cargo xtask {cmd} {flag}` exists now (issue {issue}): remove it from PENDING"
        );
        assert!(
            used.contains(&format!("{cmd} {flag}")),
            "`{cmd} {flag}` (issue {issue}) is in PENDING but no line uses it: remove it"
        );
    }
}

/// The setup steps the workflows may run besides `cargo xtask` commands, each with its reason.
const SETUP_STEPS: &[(&str, &str)] = &[
    (
        "System packages",
        "mmdebstrap for `cargo xtask base`, from the runner's apt",
    ),
    (
        "Cache backend",
        "the cache mode derived from images.toml's budgets, as a step output",
    ),
    (
        "Today, for the Trivy DB cache key",
        "the date for a cache key per day",
    ),
];

#[test]
fn every_workflow_step_is_a_cargo_xtask_command_or_a_known_setup_step() {
    let dir = root().join(".github").join("workflows");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for (line, name) in setup_steps(&text) {
            checked += 1;
            assert!(
                SETUP_STEPS.iter().any(|(n, _)| *n == name),
                "{}:{line}: step `{name}` runs no `cargo xtask` command; make it one, or \
                 add it to SETUP_STEPS with its reason",
                path.display()
            );
        }
    }
    assert!(checked > 0, "no setup step found: is the parser broken?");
}

#[test]
fn setup_steps_are_found_by_name() {
    let yml = "steps:\n  - name: Tools\n    run: |\n      pip install x\n  - name: Build\n    run: |\n      echo go\n      cargo xtask build cpu\n  - run: date\n";
    assert_eq!(
        setup_steps(yml),
        [(3, "Tools".to_string()), (9, String::new())]
    );
}

#[test]
fn a_broken_line_in_a_markdown_file_fails_naming_file_and_line() {
    let fixture = root().join("xtask/tests/fixtures/docs-drift/broken.md");
    let broken = broken_lines(&[fixture], &root());
    assert_eq!(broken.len(), 2, "{broken:#?}");
    assert!(
        broken[0].starts_with(
            "xtask/tests/fixtures/docs-drift/broken.md:3: cargo xtask build cpu --no-such-flag: "
        ) && broken[0].contains("--no-such-flag"),
        "{}",
        broken[0]
    );
    assert!(
        broken[1]
            .starts_with("xtask/tests/fixtures/docs-drift/broken.md:9: cargo xtask smok cpu: "),
        "{}",
        broken[1]
    );
}
