//! Render (pure): the comparison as titled tables (text or Markdown, through report.rs) and as a
//! summary of a few lines for an error message.

use super::compare::{Change, ConfigChange, Diff, FileChange, LayerDiff, LayerStatus};
use super::layer::FileFacts;
use crate::report::{Section, Table};

/// Files listed per layer in text and Markdown; JSON lists them all.
const FILES_SHOWN: usize = 40;

pub(crate) fn sections(diff: &Diff) -> Vec<Section> {
    let mut out = vec![Section {
        title: Some(verdict(diff)),
        table: images(diff),
    }];
    if !diff.config.is_empty() {
        out.push(Section {
            title: Some(match diff.config.len() {
                1 => "config: 1 field differs".to_string(),
                n => format!("config: {n} fields differ"),
            }),
            table: config(&diff.config),
        });
    }
    if !diff.identical {
        out.push(Section {
            title: Some("layers, bottom first".into()),
            table: layers(&diff.layers),
        });
    }
    for layer in diff.layers.iter().filter(|l| !l.files.is_empty()) {
        out.push(Section {
            title: Some(format!(
                "layer {}: {}",
                layer.index,
                short(&layer.created_by, 90)
            )),
            table: files(&layer.files),
        });
    }
    out
}

fn verdict(diff: &Diff) -> String {
    if diff.identical {
        format!("{} and {} are the same image", diff.a.name, diff.b.name)
    } else {
        format!("{} and {} differ", diff.a.name, diff.b.name)
    }
}

fn images(diff: &Diff) -> Table {
    let mut table = Table::new(&["", "A", "B"]);
    let (a, b) = (&diff.a, &diff.b);
    let dash = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
    table.row(vec!["image".into(), a.name.clone(), b.name.clone()]);
    table.row(vec![
        "platform".into(),
        a.platform.clone(),
        b.platform.clone(),
    ]);
    table.row(vec!["index".into(), dash(&a.index), dash(&b.index)]);
    table.row(vec![
        "manifest".into(),
        a.manifest.clone(),
        b.manifest.clone(),
    ]);
    table.row(vec!["config".into(), a.config.clone(), b.config.clone()]);
    table
}

fn config(changes: &[ConfigChange]) -> Table {
    let mut table = Table::new(&["field", "A", "B"]);
    let value = |v: &Option<serde_json::Value>| match v {
        None => "(absent)".to_string(),
        Some(serde_json::Value::String(s)) => short(s, 70),
        Some(other) => short(&other.to_string(), 70),
    };
    for c in changes {
        table.row(vec![c.field.clone(), value(&c.a), value(&c.b)]);
    }
    table
}

fn layers(layers: &[LayerDiff]) -> Table {
    let mut table = Table::new(&["layer", "made by", "status", "files"]).right_align(&[0]);
    for l in layers {
        let status = match l.status {
            LayerStatus::Same => "same",
            LayerStatus::Recompressed => "same files, other compression",
            LayerStatus::Differs => "differs",
            LayerStatus::OnlyA => "only in A",
            LayerStatus::OnlyB => "only in B",
        };
        table.row(vec![
            l.index.to_string(),
            short(&l.created_by, 60),
            status.into(),
            counts(&l.files),
        ]);
    }
    table
}

/// `3 added, 1 removed, 743 changed` (or empty).
fn counts(files: &[FileChange]) -> String {
    let n = |c: Change| files.iter().filter(|f| f.change == c).count();
    let parts: Vec<String> = [
        (n(Change::Added), "added"),
        (n(Change::Removed), "removed"),
        (n(Change::Changed), "changed"),
    ]
    .into_iter()
    .filter(|(count, _)| *count > 0)
    .map(|(count, what)| format!("{count} {what}"))
    .collect();
    parts.join(", ")
}

fn files(changes: &[FileChange]) -> Table {
    let mut table = Table::new(&["path", "change", "A", "B"]);
    for c in changes.iter().take(FILES_SHOWN) {
        let (change, a, b) = match c.change {
            Change::Added => ("added".to_string(), "-".into(), facts(c.b.as_ref(), &[])),
            Change::Removed => ("removed".to_string(), facts(c.a.as_ref(), &[]), "-".into()),
            Change::Changed => (
                c.fields.join(", "),
                facts(c.a.as_ref(), &c.fields),
                facts(c.b.as_ref(), &c.fields),
            ),
        };
        table.row(vec![c.path.clone(), change, a, b]);
    }
    if changes.len() > FILES_SHOWN {
        table.row(vec![
            format!(
                "… {} more (--format json lists them all)",
                changes.len() - FILES_SHOWN
            ),
            String::new(),
            String::new(),
            String::new(),
        ]);
    }
    table
}

/// A file's facts, only `fields` of them when some are named.
fn facts(f: Option<&FileFacts>, fields: &[&str]) -> String {
    let Some(f) = f else {
        return "-".into();
    };
    let all = [
        ("type", f.kind.to_string()),
        (
            "content",
            f.sha256.as_deref().map_or("-".into(), short_digest),
        ),
        ("size", f.size.to_string()),
        ("mode", f.mode.clone()),
        ("owner", format!("{}:{}", f.uid, f.gid)),
        ("mtime", crate::util::rfc3339(f.mtime)),
        ("link", f.link.clone().unwrap_or_else(|| "-".into())),
        ("xattrs", format!("{:?}", f.xattrs)),
    ];
    let shown: Vec<String> = all
        .iter()
        .filter(|(name, _)| {
            if fields.is_empty() {
                matches!(*name, "type" | "mode" | "owner" | "size")
            } else {
                fields.contains(name)
            }
        })
        .map(|(name, value)| format!("{name} {value}"))
        .collect();
    shown.join(", ")
}

/// A few lines for an error: what differs, and in which layers, with an example path each.
pub(crate) fn summary(diff: &Diff) -> String {
    if diff.identical {
        return verdict(diff);
    }
    let mut lines = vec![format!(
        "manifest {} vs {}; config {}",
        diff.a.manifest,
        diff.b.manifest,
        if diff.a.config == diff.b.config {
            "the same".to_string()
        } else {
            let fields: Vec<&str> = diff
                .config
                .iter()
                .take(3)
                .map(|c| c.field.as_str())
                .collect();
            let more = if diff.config.len() > 3 { ", …" } else { "" };
            match diff.config.len() {
                1 => format!("differs in {}", fields[0]),
                n => format!("differs in {n} fields ({}{more})", fields.join(", ")),
            }
        }
    )];
    for l in diff.layers.iter().filter(|l| l.status != LayerStatus::Same) {
        let example = l
            .files
            .first()
            .map(|f| format!(", e.g. {} ({})", f.path, describe(f)))
            .unwrap_or_default();
        lines.push(format!(
            "layer {} ({}): {}{}{example}",
            l.index,
            short(&l.created_by, 60),
            match l.status {
                LayerStatus::Recompressed => "same files, other compression",
                LayerStatus::OnlyA => "only in the first image",
                LayerStatus::OnlyB => "only in the second image",
                _ => "differs",
            },
            if l.files.is_empty() {
                String::new()
            } else {
                format!(": {}", counts(&l.files))
            },
        ));
    }
    lines.join("\n")
}

fn describe(f: &FileChange) -> String {
    match f.change {
        Change::Added => "added".into(),
        Change::Removed => "removed".into(),
        Change::Changed => f.fields.join(", "),
    }
}

/// `sha256:0123456789ab`: enough of a content digest to tell two apart.
fn short_digest(digest: &str) -> String {
    digest.chars().take("sha256:".len() + 12).collect()
}

/// At most `max` characters, with `…` where it was cut.
fn short(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max - 1).collect();
    format!("{cut}…")
}
