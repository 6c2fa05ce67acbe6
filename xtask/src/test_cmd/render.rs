//! Where a test run's time went (pure): a table of its phases and one of its test binaries, the
//! longest first.

use std::time::Duration;

use super::plan::{Counts, Outcome};
use crate::report::Table;

/// `12.3 s` under a minute, `3m07s` from a minute on.
pub(crate) fn duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1} s")
    } else {
        let whole = d.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

/// `6 passed`, `1 failed, 5 passed`, `17 passed, 1 ignored`.
pub(crate) fn tests(counts: &Counts) -> String {
    let mut parts = Vec::new();
    if counts.failed > 0 {
        parts.push(format!("{} failed", counts.failed));
    }
    parts.push(format!("{} passed", counts.passed));
    if counts.ignored > 0 {
        parts.push(format!("{} ignored", counts.ignored));
    }
    parts.join(", ")
}

/// The phases in the order they ran, and the total.
pub(crate) fn phases(phases: &[(String, Duration)]) -> Table {
    let mut table = Table::new(&["phase", "time"]).right_align(&[1]);
    for (name, took) in phases {
        table.row(vec![name.clone(), duration(*took)]);
    }
    let total: Duration = phases.iter().map(|p| p.1).sum();
    table.row(vec!["total".into(), duration(total)]);
    table
}

/// Every binary, the longest first: how it ended, its tests, when it started within the tests
/// phase and how long it ran.
pub(crate) fn binaries(outcomes: &[Outcome]) -> Table {
    let mut sorted: Vec<&Outcome> = outcomes.iter().collect();
    sorted.sort_by(|a, b| b.took.cmp(&a.took).then_with(|| a.name.cmp(&b.name)));
    let mut table =
        Table::new(&["test binary", "result", "tests", "started", "time"]).right_align(&[3, 4]);
    for o in sorted {
        table.row(vec![
            o.name.clone(),
            if o.passed { "ok" } else { "FAILED" }.into(),
            tests(&o.counts),
            format!("+{}", duration(o.started)),
            duration(o.took),
        ]);
    }
    table
}

/// One line under the tables: what running the binaries side by side saved.
pub(crate) fn overlap(outcomes: &[Outcome], wall: Duration, limit: usize) -> String {
    let sum: Duration = outcomes.iter().map(|o| o.took).sum();
    format!(
        "{} test binaries, at most {limit} at once: {} of their time in {} of the run's",
        outcomes.len(),
        duration(sum),
        duration(wall)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(name: &str, passed: bool, secs: u64) -> Outcome {
        Outcome {
            name: name.into(),
            passed,
            counts: Counts {
                passed: 2,
                failed: u32::from(!passed),
                ignored: 0,
            },
            started: Duration::from_secs(1),
            took: Duration::from_secs(secs),
        }
    }

    #[test]
    fn durations_read_as_seconds_then_minutes() {
        assert_eq!(duration(Duration::from_millis(4_250)), "4.2 s");
        assert_eq!(duration(Duration::from_secs(59)), "59.0 s");
        assert_eq!(duration(Duration::from_secs(207)), "3m27s");
    }

    #[test]
    fn the_tables_say_where_the_time_went() {
        let phases = phases(&[
            ("compile".into(), Duration::from_secs(12)),
            ("tests".into(), Duration::from_secs(200)),
        ]);
        assert_eq!(
            phases.render_text(),
            "phase      time\n-------  ------\ncompile  12.0 s\ntests     3m20s\n\
             total     3m32s\n"
        );
        let outcomes = [outcome("smoke", true, 26), outcome("platforms", false, 207)];
        let table = binaries(&outcomes);
        assert_eq!(
            table.rows[0][..3],
            ["platforms", "FAILED", "1 failed, 2 passed"]
        );
        assert_eq!(table.rows[1][..3], ["smoke", "ok", "2 passed"]);
        assert_eq!(table.rows[1][3..], ["+1.0 s", "26.0 s"]);
        assert_eq!(
            overlap(&outcomes, Duration::from_secs(210), 3),
            "2 test binaries, at most 3 at once: 3m53s of their time in 3m30s of the run's"
        );
    }
}
