//! The rendering stage of `sizes`: the sizes table, the largest layers with the instruction
//! that made each, the change against a baseline, and the closing progress line.

use super::facts::{Layer, Stats, Store};
use super::judge::{Change, Entry, Report, Status, WARN_PERCENT};
use crate::config::human_size;
use crate::report::{self, Series, Table};

/// `+12.3 MB (+4.1 %)`, `-1.0 kB (-0.5 %)`, `0 B (0.0 %)`.
pub(crate) fn format_change(c: &Change) -> String {
    let sign = match c.bytes.signum() {
        1 => "+",
        -1 => "-",
        _ => "",
    };
    let size = format!("{sign}{}", human_size(c.bytes.unsigned_abs()));
    match c.percent {
        Some(p) if c.bytes == 0 => format!("{size} ({:.1} %)", p.abs()),
        Some(p) => format!("{size} ({sign}{:.1} %)", p.abs()),
        None => format!("{size} (new)"),
    }
}

/// A Dockerfile instruction from a history `created_by`: BuildKit's `# buildkit` suffix, its
/// `|N ARG=value…` build-arg prefix and the `/bin/sh -c` of shell-form RUN are dropped.
pub fn instruction(created_by: &str) -> String {
    let mut s = created_by.trim();
    s = s.strip_suffix("# buildkit").unwrap_or(s).trim_end();
    if let Some(rest) = s.strip_prefix("/bin/sh -c #(nop) ") {
        return rest.trim().to_string();
    }
    if let Some(rest) = s.strip_prefix("/bin/sh -c ") {
        return format!("RUN {}", rest.trim());
    }
    if let Some(rest) = s.strip_prefix("RUN ") {
        let mut rest = rest;
        // `RUN |2 A=1 B=2 /bin/sh -c cmd`: N build args precede the command.
        if let Some(args) = rest.strip_prefix('|') {
            if let Some((n, tail)) = args.split_once(' ') {
                if let Ok(n) = n.parse::<usize>() {
                    let mut tail = tail;
                    let mut ok = true;
                    for _ in 0..n {
                        match tail.split_once(' ') {
                            Some((arg, next)) if arg.contains('=') => tail = next,
                            _ => {
                                ok = false;
                                break;
                            }
                        }
                    }
                    // Only when the arguments end where the shell command starts (values
                    // with spaces would make the count ambiguous).
                    if ok && tail.starts_with("/bin/sh -c ") {
                        rest = tail;
                    }
                }
            }
        }
        let rest = rest.strip_prefix("/bin/sh -c ").unwrap_or(rest);
        return format!("RUN {}", rest.trim());
    }
    s.to_string()
}

/// The columns of the sizes table; with a baseline, the changes too.
pub(crate) fn sizes_columns(with_delta: bool) -> Vec<&'static str> {
    let mut headers = vec![
        "variant",
        "image",
        "compressed",
        "unpacked",
        "budget",
        "status",
        "method",
    ];
    if with_delta {
        headers.extend(["Δ compressed", "Δ unpacked"]);
    }
    headers
}

/// The sizes table: one row per target.
pub(crate) fn sizes_table(report: &Report) -> Table {
    let with_delta = report.images.iter().any(|e| e.delta.is_some());
    let mut right = vec![2, 3];
    if with_delta {
        right.extend([7, 8]);
    }
    let mut table = Table::new(&sizes_columns(with_delta)).right_align(&right);
    for e in &report.images {
        let size = |s: Option<u64>| s.map_or("-".to_string(), human_size);
        let mut budgets = Vec::new();
        for (kind, budget, size) in [
            ("compressed", e.budget.compressed, e.compressed),
            ("unpacked", e.budget.unpacked, e.unpacked),
        ] {
            if let Some(b) = budget {
                let share = match size {
                    Some(s) if b > 0 => format!(" ({:.0} %)", s as f64 * 100.0 / b as f64),
                    _ => String::new(),
                };
                budgets.push(format!("{kind} ≤ {}{share}", human_size(b)));
            }
        }
        let status = match e.status {
            Status::Ok => "ok".to_string(),
            Status::Warning => "warning".to_string(),
            Status::OverBudget => "OVER BUDGET".to_string(),
            Status::NotBuilt => e.hint.clone().unwrap_or_else(|| "not built".into()),
        };
        let mut row = vec![
            e.variant.clone().unwrap_or_else(|| "-".into()),
            match &e.platform {
                Some(p) => format!("{} ({p})", e.image),
                None => e.image.clone(),
            },
            size(e.compressed),
            size(e.unpacked),
            if budgets.is_empty() {
                "-".into()
            } else {
                budgets.join(", ")
            },
            status,
            e.method.map_or("-", |m| m.describe()).to_string(),
        ];
        if with_delta {
            let cell = |c: Option<&Change>| match (c, &e.delta) {
                (Some(c), _) => format_change(c),
                (None, Some(d)) if !d.in_baseline => "new".to_string(),
                _ => "-".to_string(),
            };
            let d = e.delta.as_ref();
            row.push(cell(d.and_then(|d| d.compressed.as_ref())));
            row.push(cell(d.and_then(|d| d.unpacked.as_ref())));
        }
        table.row(row);
    }
    table
}

/// The `n` largest layers of an image by unpacked size (then compressed), heaviest first.
pub(crate) fn largest_layers(layers: &[Layer], n: usize) -> Vec<(usize, &Layer)> {
    let mut indexed: Vec<(usize, &Layer)> = layers.iter().enumerate().collect();
    indexed.sort_by(|(ia, a), (ib, b)| {
        (b.unpacked, b.compressed)
            .cmp(&(a.unpacked, a.compressed))
            .then(ia.cmp(ib))
    });
    indexed.truncate(n);
    indexed
}

/// The columns of [`layers_table`].
pub(crate) const LAYER_COLUMNS: [&str; 4] = ["layer", "unpacked", "compressed", "created by"];

pub(crate) fn layers_table(layers: &[Layer], n: usize) -> Table {
    let mut table = Table::new(&LAYER_COLUMNS).right_align(&[0, 1, 2]);
    for (i, layer) in largest_layers(layers, n) {
        let by = instruction(&layer.created_by);
        table.row(vec![
            format!("{}/{}", i + 1, layers.len()),
            human_size(layer.unpacked),
            human_size(layer.compressed),
            if by.is_empty() {
                "(no history)".into()
            } else {
                crate::util::shorten(&by, 120)
            },
        ]);
    }
    table
}

/// The Markdown report: the sizes table with its budget charts beside it, then the other tables.
pub(super) fn markdown(report: &Report, sections: &[report::Section]) -> String {
    let charts = budget_charts(report);
    // Charts exist only for measured images, whose table is the first section.
    let split = if charts.is_empty() { 0 } else { 1 };
    let mut parts = vec![report::sections_markdown(&sections[..split])];
    parts.extend(charts);
    parts.push(report::sections_markdown(&sections[split..]));
    parts.retain(|p| !p.is_empty());
    parts.join("\n")
}

/// One kind of an entry's size, and its budget.
type SizeAndBudget = fn(&Entry) -> (Option<u64>, Option<u64>);

/// The sizes that have a budget as one Mermaid chart (none when nothing has a budget).
pub(crate) fn budget_charts(report: &Report) -> Vec<String> {
    let kinds: [(&str, SizeAndBudget); 2] = [
        ("compressed", |e| (e.compressed, e.budget.compressed)),
        ("unpacked", |e| (e.unpacked, e.budget.unpacked)),
    ];
    let rows: Vec<(String, u64, u64)> = report
        .images
        .iter()
        .flat_map(|e| {
            kinds.iter().filter_map(move |(kind, of)| match of(e) {
                (Some(size), Some(budget)) => Some((format!("{}, {kind}", label(e)), size, budget)),
                _ => None,
            })
        })
        .collect();
    match rows.is_empty() {
        true => vec![],
        false => vec![budget_chart(&rows)],
    }
}

/// `(image and kind of size, size, budget)` rows in bytes as a chart of each size's share of its
/// budget, the budget and the warning threshold as lines: a 150 MB image and a 4 GB one are read
/// on one scale.
pub fn budget_chart(rows: &[(String, u64, u64)]) -> String {
    let labels: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let level = |percent: u64| vec![percent as f64; rows.len()];
    let series = [
        Series::bar(
            "size",
            rows.iter()
                .map(|r| r.1 as f64 * 100.0 / r.2.max(1) as f64)
                .collect(),
        ),
        Series::line("budget", level(100)),
        Series::line("warning", level(WARN_PERCENT)),
    ];
    report::xychart(
        "Size against its budget (%)",
        &labels,
        "% of the budget",
        &series,
    )
}

/// `cpu-minimal`, or `cpu-minimal (linux/arm64)` for one platform's image.
fn label(e: &Entry) -> String {
    match &e.platform {
        Some(p) => format!("{} ({p})", e.name),
        None => e.name.clone(),
    }
}

/// The tables to print: sizes first, then the largest layers of each measured image.
pub(super) fn sections(report: &Report, layers: Option<usize>) -> Vec<report::Section> {
    let mut out = Vec::new();
    // Only registry images asked for: no empty table of local ones above them.
    if !report.images.is_empty() || report.registry.is_empty() {
        out.push(report::Section {
            title: None,
            table: sizes_table(report),
        });
    }
    if !report.registry.is_empty() {
        out.push(report::Section {
            title: Some(format!("From the registry: {}", super::registry::METHOD)),
            table: super::registry::table(&report.registry),
        });
    }
    if let Some(n) = layers {
        for e in report.images.iter().filter(|e| e.id.is_some()) {
            out.push(report::Section {
                title: Some(format!(
                    "{}{}: the {} largest of {} layers",
                    e.name,
                    e.platform
                        .as_ref()
                        .map_or(String::new(), |p| format!(" ({p})")),
                    n.min(e.layers.len()),
                    e.layers.len()
                )),
                table: layers_table(&e.layers, n),
            });
        }
    }
    out
}

/// The closing progress line: where the facts came from, and how the layers were sized.
pub(crate) fn summary(images: usize, store: Store, stats: &Stats) -> String {
    let mut sources = Vec::new();
    if stats.from_cache > 0 {
        sources.push(format!("{} from the cache", stats.from_cache));
    }
    if stats.from_store > 0 {
        sources.push(format!("{} read from the content store", stats.from_store));
    }
    if stats.saved > 0 {
        sources.push(format!(
            "{} read with `docker save` ({})",
            stats.saved,
            human_size(stats.read)
        ));
    }
    let mut line = format!(
        "{images} image(s) on the {} store in {:.2} s",
        store.key(),
        stats.seconds
    );
    if !sources.is_empty() {
        line.push_str(&format!(": {}", sources.join(", ")));
    }
    let mut sized = Vec::new();
    if stats.by_trailer > 0 {
        sized.push(format!("{} sized by gzip trailer", stats.by_trailer));
    }
    if stats.decompressed > 0 {
        sized.push(format!("{} decompressed", stats.decompressed));
    }
    if stats.processed > 0 {
        sized.push(format!("{} (de)compressed", human_size(stats.processed)));
    }
    if !sized.is_empty() {
        line.push_str(&format!("; layers: {}", sized.join(", ")));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sizes::judge::{change, tests::facts, tests::sample_report};

    #[test]
    fn the_budgeted_sizes_get_one_chart_beside_the_sizes_table() {
        // cpu: unpacked 950 B of a 1000 B budget; small: compressed 600 B of 500 B; cuda unbuilt.
        let report = sample_report();
        let charts = budget_charts(&report);
        assert_eq!(charts.len(), 1, "{charts:#?}");
        let chart = &charts[0];
        assert!(
            chart.contains("title \"Size against its budget (%)\""),
            "{chart}"
        );
        assert!(
            chart.contains("x-axis [\"cpu, unpacked\", \"small, compressed\"]"),
            "{chart}"
        );
        assert!(chart.contains("bar \"size\" [95, 120]"), "{chart}");
        assert!(chart.contains("line \"budget\" [100, 100]"), "{chart}");
        assert!(chart.contains("line \"warning\" [90, 90]"), "{chart}");

        let md = markdown(&report, &sections(&report, Some(1)));
        let table = md.find("| variant").unwrap();
        let chart = md.find("```mermaid").unwrap();
        let layers = md.find("#### ").unwrap();
        assert!(table < chart && chart < layers, "{md}");
        // Nothing with a budget: the tables alone.
        let mut none = sample_report();
        none.images
            .iter_mut()
            .for_each(|e| e.budget = Default::default());
        assert!(budget_charts(&none).is_empty());
        assert_eq!(
            markdown(&none, &sections(&none, None)),
            report::sections_markdown(&sections(&none, None))
        );
    }

    #[test]
    fn changes_have_signs_and_percentages() {
        let grew = change(1_000_000, 1_100_000);
        assert_eq!(grew.bytes, 100_000);
        assert_eq!(format_change(&grew), "+100.0 kB (+10.0 %)");
        let shrank = change(2_000_000_000, 1_500_000_000);
        assert_eq!(shrank.bytes, -500_000_000);
        assert_eq!(format_change(&shrank), "-500.0 MB (-25.0 %)");
        assert_eq!(format_change(&change(5, 5)), "0 B (0.0 %)");
        assert_eq!(format_change(&change(0, 5)), "+5 B (new)");
        assert_eq!(
            change(3, 1).percent.map(|p| (p * 100.0).round()),
            Some(-6667.0)
        );
    }

    #[test]
    fn sizes_table_shows_changes_budgets_and_missing_builds() {
        let report = sample_report();
        let text = sizes_table(&report).render_text();
        assert!(text.contains("+100 B (+50.0 %)"), "{text}");
        assert!(text.contains("-50 B (-5.0 %)"), "{text}");
        assert!(text.contains("OVER BUDGET"), "{text}");
        assert!(text.contains("cargo xtask build cuda"), "{text}");
        assert!(text.contains("unpacked ≤ 1.0 kB (95 %)"), "{text}");
        let md = sizes_table(&report).render_markdown();
        assert!(
            md.lines().all(|l| l.starts_with('|') && l.ends_with('|')),
            "{md}"
        );
    }

    #[test]
    fn largest_layers_come_first_with_their_position() {
        let f = facts(
            "sha256:a",
            &[
                (5, 50, "ADD rootfs.tar / # buildkit"),
                (1, 10, "ENV"),
                (9, 90, "RUN |1 X=1 /bin/sh -c make # buildkit"),
            ],
        );
        let top = largest_layers(&f.layers, 2);
        assert_eq!(top.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [2, 0]);
        let text = layers_table(&f.layers, 2).render_text();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[2].contains("3/3") && lines[2].ends_with("RUN make"),
            "{text}"
        );
        assert!(
            lines[3].contains("1/3") && lines[3].ends_with("ADD rootfs.tar /"),
            "{text}"
        );
    }

    #[test]
    fn summary_names_only_what_happened() {
        let stats = Stats {
            seconds: 0.19,
            from_store: 4,
            by_trailer: 5,
            decompressed: 7,
            processed: 199_700,
            ..Default::default()
        };
        assert_eq!(
            summary(4, Store::Containerd, &stats),
            "4 image(s) on the containerd store in 0.19 s: 4 read from the content store; \
             layers: 5 sized by gzip trailer, 7 decompressed, 199.7 kB (de)compressed"
        );
        let cached = Stats {
            seconds: 0.1,
            from_cache: 2,
            ..Default::default()
        };
        assert_eq!(
            summary(2, Store::Classic, &cached),
            "2 image(s) on the classic store in 0.10 s: 2 from the cache"
        );
    }

    #[test]
    fn instructions_lose_buildkit_noise() {
        assert_eq!(instruction("COPY a /a # buildkit"), "COPY a /a");
        assert_eq!(
            instruction("RUN /bin/sh -c apt-get update # buildkit"),
            "RUN apt-get update"
        );
        assert_eq!(
            instruction("RUN |2 TORCH=1 PY=3.13 /bin/sh -c uv pip install torch # buildkit"),
            "RUN uv pip install torch"
        );
        assert_eq!(
            instruction("/bin/sh -c #(nop)  CMD [\"bash\"]"),
            "CMD [\"bash\"]"
        );
        assert_eq!(instruction("/bin/sh -c make"), "RUN make");
        assert_eq!(
            instruction("RUN |1 A=has space /bin/sh -c x"),
            "RUN |1 A=has space /bin/sh -c x"
        );
        assert_eq!(instruction(""), "");
    }
}
