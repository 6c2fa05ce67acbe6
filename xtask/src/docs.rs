//! `cargo xtask docs`: the figures of README.md and docs/*.md are generated, not typed.
//!
//! A block opened by `<!-- cargo xtask ARGS -->` and closed by `<!-- end -->` holds a stamp line
//! (the command, the date, its exit code, the machine) and the Markdown report of
//! `cargo xtask ARGS --format markdown`. `cargo xtask docs` runs each block's command and pastes
//! its report; tests/docs_blocks.rs checks that every block has the tables its command prints
//! today. A block opened by `<!-- to regenerate: cargo xtask ARGS -->` holds a figure kept from
//! an earlier output format: it is listed, not checked, and becomes a generated block the next
//! time its command runs.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use std::ops::Range;

use crate::ctx::Ctx;
use crate::output::progress;
use crate::process::Cmd;
use crate::report::{self, Machine, Shape, Table};

/// The line that closes a block.
pub(crate) const END: &str = "<!-- end -->";
const OPEN: &str = "<!-- cargo xtask ";
const OPEN_PENDING: &str = "<!-- to regenerate: cargo xtask ";

/// A block of a document, between its markers.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// The line of its opening marker, from 1.
    pub line: usize,
    /// The words after `cargo xtask`.
    pub argv: Vec<String>,
    /// Opened with `to regenerate:`: a figure in an earlier output format.
    pub pending: bool,
    /// The text between the markers.
    pub body: String,
    /// From the start of the opening marker to the start of `<!-- end -->`, in bytes.
    span: Range<usize>,
}

impl Block {
    /// `cargo xtask ARGS`.
    pub fn command(&self) -> String {
        format!("cargo xtask {}", self.argv.join(" "))
    }

    /// The `YYYY-MM-DD` of its stamp line (the first non-empty line), which must name its
    /// command in a code span.
    pub fn date(&self) -> Option<&str> {
        let stamp = self.body.lines().find(|l| !l.trim().is_empty())?;
        if !stamp.contains(&format!("`{}`", self.command())) {
            return None;
        }
        stamp
            .split(|c: char| !(c.is_ascii_digit() || c == '-'))
            .find(|w| is_date(w))
    }
}

fn is_date(word: &str) -> bool {
    let b = word.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// The blocks of a Markdown document, in order. Markers inside code fences outside blocks are
/// text; a block left open, or opened inside another, is an error naming its line.
pub fn blocks(text: &str) -> Result<Vec<Block>> {
    let mut out = Vec::new();
    // The opening marker: its line, words, pending flag, start and the body's start.
    let mut open: Option<(usize, Vec<String>, bool, usize, usize)> = None;
    let mut fenced = false;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let (start, trimmed) = (offset, line.trim());
        offset += line.len();
        if let Some((at, argv, pending, from, body)) = open.take() {
            if trimmed == END {
                out.push(Block {
                    line: at,
                    argv,
                    pending,
                    body: text[body..start].to_string(),
                    span: from..start,
                });
            } else if opening(trimmed)?.is_some() {
                bail!(
                    "line {}: a block opens inside the block of line {at}",
                    i + 1
                );
            } else {
                open = Some((at, argv, pending, from, body));
            }
        } else if trimmed.starts_with("```") {
            fenced = !fenced;
        } else if fenced {
        } else if let Some((argv, pending)) = opening(trimmed)? {
            open = Some((i + 1, argv, pending, start, offset));
        } else if trimmed == END {
            bail!("line {}: `{END}` closes no block", i + 1);
        }
    }
    if let Some((at, ..)) = open {
        bail!("line {at}: the block has no `{END}`");
    }
    Ok(out)
}

/// An opening marker's command words and whether it is pending; None for any other line.
fn opening(line: &str) -> Result<Option<(Vec<String>, bool)>> {
    let (rest, pending) = match (line.strip_prefix(OPEN_PENDING), line.strip_prefix(OPEN)) {
        (Some(rest), _) => (rest, true),
        (None, Some(rest)) => (rest, false),
        (None, None) => return Ok(None),
    };
    let Some(words) = rest.strip_suffix("-->") else {
        return Ok(None);
    };
    let argv: Vec<String> = words.split_whitespace().map(str::to_string).collect();
    if argv.is_empty() || argv.iter().any(|w| w.contains(['"', '\'', '`', '$'])) {
        bail!("`{line}`: a marker names its command in plain words (no quotes or expansions)");
    }
    if argv
        .iter()
        .any(|w| w == "--format" || w.starts_with("--format="))
    {
        bail!("`{line}`: leave --format out; `cargo xtask docs` adds `--format markdown`");
    }
    Ok(Some((argv, pending)))
}

/// The first line of a generated block.
pub(crate) fn stamp(argv: &[String], date: &str, exit: i32, machine: &Machine) -> String {
    format!(
        "_`cargo xtask {}` on {date}, exit {exit}; {}._",
        argv.join(" "),
        machine.describe()
    )
}

/// The document with a block replaced by a generated one: its marker (no longer pending), the
/// stamp line and the report.
pub(crate) fn replace(text: &str, block: &Block, stamp: &str, markdown: &str) -> String {
    format!(
        "{}{OPEN}{} -->\n{stamp}\n\n{}\n{}",
        &text[..block.span.start],
        block.argv.join(" "),
        markdown.trim_end(),
        &text[block.span.end..]
    )
}

/// README.md and docs/*.md, relative to the root, README first.
pub fn documents(root: &Utf8Path) -> Result<Vec<Utf8PathBuf>> {
    let mut docs: Vec<Utf8PathBuf> = root
        .join("docs")
        .read_dir_utf8()
        .with_context(|| format!("listing {}", crate::util::shown(root.join("docs"))))?
        .filter_map(|e| e.ok())
        .map(|e| Utf8PathBuf::from("docs").join(e.file_name()))
        .filter(|p| p.extension() == Some("md"))
        .collect();
    docs.sort();
    docs.insert(0, "README.md".into());
    Ok(docs)
}

/// What `cargo xtask docs` needs to know of a command line: the shape of its Markdown report
/// (an error for a command without one).
pub(crate) type ShapeOf = fn(&Utf8Path, &[String]) -> Result<Shape>;

#[derive(clap::Args)]
pub struct Args {
    /// Only the blocks whose command contains TEXT (repeatable), e.g. `sizes` or `bench rebuild`.
    #[arg(long, value_name = "TEXT")]
    only: Vec<String>,
    /// Only the blocks of this Markdown file (repeatable; default: README.md and docs/*.md).
    #[arg(long = "file", value_name = "FILE")]
    files: Vec<Utf8PathBuf>,
    /// List the blocks (where, command, date, state) and run nothing.
    #[arg(long)]
    list: bool,
}

/// A block and the document it is in.
struct Found {
    /// The document as the user names it.
    file: Utf8PathBuf,
    path: Utf8PathBuf,
    /// Its place among the document's blocks.
    index: usize,
    block: Block,
}

impl Args {
    pub fn run(self, ctx: &Ctx, shape_of: ShapeOf) -> Result<()> {
        let found = self.select(find(&self.documents(&ctx.root)?)?)?;
        if self.list {
            return crate::output::result(&list(&found).render_text());
        }
        for f in &found {
            shape_of(&ctx.root, &f.block.argv)
                .with_context(|| format!("{}:{}: `{}`", f.file, f.block.line, f.block.command()))?;
        }
        let machine = Machine::of(&crate::docker::info()?);
        let mut done = Table::new(&["block", "command", "exit"]);
        for f in &found {
            let exit = regenerate(ctx, f, &machine)?;
            done.row(vec![
                format!("{}:{}", f.file, f.block.line),
                f.block.command(),
                exit.to_string(),
            ]);
        }
        crate::output::result(&done.render_text())
    }

    /// The documents to read: each at its path, and as the user names it.
    fn documents(&self, root: &Utf8Path) -> Result<Vec<(Utf8PathBuf, Utf8PathBuf)>> {
        if self.files.is_empty() {
            return Ok(documents(root)?
                .into_iter()
                .map(|f| (root.join(&f), f))
                .collect());
        }
        self.files
            .iter()
            .map(|f| Ok((crate::util::absolute(f)?, f.clone())))
            .collect()
    }

    fn select(&self, found: Vec<Found>) -> Result<Vec<Found>> {
        if self.only.is_empty() {
            return Ok(found);
        }
        let chosen: Vec<Found> = found
            .into_iter()
            .filter(|f| self.only.iter().any(|o| f.block.command().contains(o)))
            .collect();
        if chosen.is_empty() {
            bail!(
                "no block's command contains {}: `cargo xtask docs --list` lists them",
                self.only.join(" or ")
            );
        }
        Ok(chosen)
    }
}

/// Every block of the documents.
fn find(files: &[(Utf8PathBuf, Utf8PathBuf)]) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    for (path, file) in files {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {file}"))?;
        let found = blocks(&text).with_context(|| format!("{file}"))?;
        out.extend(found.into_iter().enumerate().map(|(index, block)| Found {
            file: file.clone(),
            path: path.clone(),
            index,
            block,
        }));
    }
    Ok(out)
}

fn list(found: &[Found]) -> Table {
    let mut table = Table::new(&["block", "command", "date", "state"]);
    for f in found {
        table.row(vec![
            format!("{}:{}", f.file, f.block.line),
            f.block.command(),
            f.block.date().unwrap_or("-").into(),
            if f.block.pending {
                "to regenerate"
            } else {
                "generated"
            }
            .into(),
        ]);
    }
    table
}

/// Runs a block's command and writes its report into the document; returns its exit code. A
/// check that said no (exit 1) is a figure too; any other failure leaves the block as it was.
fn regenerate(ctx: &Ctx, f: &Found, machine: &Machine) -> Result<i32> {
    let (command, place) = (f.block.command(), format!("{}:{}", f.file, f.block.line));
    progress!("docs: {place}: {command} --format markdown");
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let out = Cmd::new(exe)
        .args(&f.block.argv)
        .args(["--format", "markdown"])
        .env("XTASK_CONFIG", &ctx.config_path)
        .dir(&ctx.root)
        .output_showing_progress()?;
    let exit = out.status.code().unwrap_or(-1);
    let markdown = String::from_utf8_lossy(&out.stdout);
    if !matches!(exit, 0 | 1) {
        bail!("{place}: `{command}` failed (exit {exit}, its error above): the block is left as it was");
    }
    if markdown.trim().is_empty() {
        bail!("{place}: `{command}` printed no report: the block is left as it was");
    }
    let text = std::fs::read_to_string(&f.path).with_context(|| format!("reading {}", f.file))?;
    let block = blocks(&text)?
        .into_iter()
        .nth(f.index)
        .filter(|b| b.argv == f.block.argv)
        .with_context(|| format!("{place}: the block moved while its command ran: run again"))?;
    let today = &crate::util::rfc3339(now())[..10];
    let stamp = stamp(&block.argv, today, exit, machine);
    report::write_atomic(
        &f.path,
        replace(&text, &block, &stamp, &markdown).as_bytes(),
    )?;
    Ok(exit)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# Title\n\n<!-- cargo xtask sizes cpu-minimal -->\n_`cargo xtask sizes \
                       cpu-minimal` on 2026-12-01, exit 0; 2 CPUs, Docker 28.5.2, x._\n\n| a \
                       |\n| --- |\n| 1 |\n<!-- end -->\n\n```md\n<!-- cargo xtask not a block \
                       -->\n```\n<!-- to regenerate: cargo xtask bench rebuild cuda --runs 3 \
                       -->\nold\n<!-- end -->\n";

    #[test]
    fn blocks_are_found_with_their_command_date_and_state() {
        let found = blocks(DOC).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].line, 3);
        assert_eq!(found[0].command(), "cargo xtask sizes cpu-minimal");
        assert_eq!(found[0].date(), Some("2026-12-01"));
        assert!(!found[0].pending);
        assert_eq!(found[1].argv, ["bench", "rebuild", "cuda", "--runs", "3"]);
        assert!(found[1].pending);
        assert_eq!(found[1].date(), None, "no stamp line");
    }

    #[test]
    fn a_regenerated_block_replaces_only_itself_and_is_no_longer_pending() {
        let found = blocks(DOC).unwrap();
        let text = replace(DOC, &found[1], "_stamp_", "| b |\n| --- |\n\n");
        assert!(text.starts_with(&DOC[..DOC.find("<!-- to regenerate").unwrap()]));
        assert!(text.ends_with(
            "<!-- cargo xtask bench rebuild cuda --runs 3 -->\n_stamp_\n\n| b |\n| --- |\n<!-- end -->\n"
        ));
        let again = blocks(&text).unwrap();
        assert_eq!(again.len(), 2);
        assert!(!again[1].pending);
    }

    #[test]
    fn broken_markers_are_errors_naming_their_line() {
        let err = |text: &str| blocks(text).unwrap_err().to_string();
        assert_eq!(
            err("a\n<!-- cargo xtask sizes -->\nb\n"),
            "line 2: the block has no `<!-- end -->`"
        );
        assert_eq!(
            err("<!-- end -->\n"),
            "line 1: `<!-- end -->` closes no block"
        );
        assert_eq!(
            err("<!-- cargo xtask sizes -->\n<!-- cargo xtask sizes -->\n<!-- end -->\n"),
            "line 2: a block opens inside the block of line 1"
        );
        assert!(err("<!-- cargo xtask sizes --format json -->\n").contains("leave --format out"));
        assert!(err("<!-- cargo xtask sizes \"a b\" -->\n").contains("plain words"));
    }

    #[test]
    fn the_stamp_names_command_date_exit_and_machine() {
        let machine = Machine {
            cpus: 2,
            docker: "28.5.2".into(),
            store: "containerd snapshotter (overlayfs)".into(),
        };
        let argv = vec!["sizes".to_string(), "cuda".to_string()];
        assert_eq!(
            stamp(&argv, "2026-12-05", 1, &machine),
            "_`cargo xtask sizes cuda` on 2026-12-05, exit 1; 2 CPUs, Docker 28.5.2, containerd \
             snapshotter (overlayfs)._"
        );
    }
}
