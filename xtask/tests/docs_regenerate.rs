//! `cargo xtask docs` against the real engine: it runs a block's command and pastes its Markdown
//! report under a stamp of today, in a document of the test's own (`--file`); a command that
//! fails leaves its block, and the whole document, as they were.

#![allow(clippy::disallowed_methods, clippy::disallowed_macros)] // tests run programs and print as a user would

mod common;

use common::{ensure_base, xtask_run, Scratch, BASE_IMAGE};

fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    xtask::util::rfc3339(secs)[..10].to_string()
}

#[test]
fn a_block_gets_its_commands_report_and_a_failing_command_leaves_the_document_alone() {
    ensure_base();
    let dir = Scratch::new("docs-regenerate");
    let missing = "localhost/xtask-no-such-image:docs";
    let text = format!(
        "# Figures\n\n<!-- cargo xtask sizes --image {BASE_IMAGE} -->\nstale\n<!-- end -->\n\n\
         <!-- to regenerate: cargo xtask sizes --image {missing} -->\n_`cargo xtask sizes \
         --image {missing}` on 2026-01-01._\n<!-- end -->\n"
    );
    let doc = dir.write("figures.md", &text);
    let file = doc.to_str().unwrap();

    let run = xtask_run(&["docs", "--file", file, "--only", BASE_IMAGE]).assert_ok();
    assert!(run.stdout.contains("exit"), "{}", run.stdout);
    let after = std::fs::read_to_string(&doc).unwrap();
    let blocks = xtask::docs::blocks(&after).unwrap();
    assert_eq!(blocks.len(), 2, "{after}");
    let generated = &blocks[0];
    assert_eq!(generated.date(), Some(today().as_str()), "{after}");
    assert!(!generated.body.contains("stale"), "{after}");
    let shape =
        xtask::cli::report_shape(xtask::util::project_root().as_path(), &generated.argv).unwrap();
    let header = format!("| {} |", shape.tables[0].columns.join(" | "));
    assert!(generated.body.contains(&header), "{header} not in\n{after}");
    assert!(generated.body.contains(BASE_IMAGE), "{after}");
    let rest = &text[text.find("\n\n<!-- to regenerate").unwrap()..];
    assert!(after.ends_with(rest), "the other block changed:\n{after}");

    let run = xtask_run(&["docs", "--file", file, "--only", missing]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    // The child's own error first, then this command's.
    let last = run.stderr.lines().rfind(|l| l.starts_with("error:"));
    assert!(
        last.is_some_and(|l| l.contains("the block is left as it was")),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&doc).unwrap(), after);
}

#[test]
fn a_block_whose_command_has_no_markdown_report_is_refused_before_anything_runs() {
    let dir = Scratch::new("docs-refused");
    let text = "<!-- cargo xtask config -->\n<!-- end -->\n";
    let doc = dir.write("figures.md", text);
    let run = xtask_run(&["docs", "--file", doc.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.error_line().contains("has no Markdown report"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&doc).unwrap(), text);
}
