//! The judging stage of `sizes` (pure): each target's measured facts against its budgets of
//! images.toml, and against an earlier report when one is given, into the report.

use anyhow::Result;
use camino::Utf8PathBuf;
use serde::{Deserialize, Serialize};

use super::facts::{ImageFacts, Layer, Method, Stats};
use crate::config::{human_size, Budget};

/// The share of a budget from which a size draws a warning.
pub(crate) const WARN_PERCENT: u64 = 90;

/// One thing to measure: a variant's image, or an image named with --image.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The variant name, or the image reference for --image.
    pub(crate) name: String,
    pub(crate) variant: Option<String>,
    pub(crate) image: String,
    /// One platform of a multi-platform image (None: the image as the engine resolves it).
    pub(crate) platform: Option<String>,
    pub(crate) budget: Budget,
    /// The variant's `push_compression`: zstd layers are sized as a push sends them.
    pub(crate) push_zstd: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The engine's version and image store, e.g. `28.5.2, containerd snapshotter (overlayfs)`.
    pub(crate) engine: String,
    pub images: Vec<Entry>,
    /// Images read from their registry (`--image REGISTRY/IMAGE:TAG`), per platform.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) registry: Vec<super::registry::RegistryEntry>,
    /// How this run measured (absent from reports built in memory, e.g. in unit tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<Stats>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Ok,
    /// At or above 90 % of a budget.
    Warning,
    OverBudget,
    NotBuilt,
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub name: String,
    pub(crate) variant: Option<String>,
    pub(crate) image: String,
    /// The platform measured, for one platform of a multi-platform image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) platform: Option<String>,
    pub(crate) id: Option<String>,
    pub status: Status,
    /// Bytes: sum of the compressed layer blobs.
    pub(crate) compressed: Option<u64>,
    /// Bytes: sum of the uncompressed layer tars.
    pub unpacked: Option<u64>,
    pub(crate) method: Option<Method>,
    pub(crate) budget: BudgetOut,
    /// Budget warnings and overshoots.
    pub(crate) findings: Vec<Finding>,
    /// What to do when the image is not built.
    pub(crate) hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) delta: Option<Delta>,
    /// Every layer, base first.
    pub layers: Vec<Layer>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct BudgetOut {
    pub(crate) compressed: Option<u64>,
    pub(crate) unpacked: Option<u64>,
}

/// The change against a baseline report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Delta {
    /// False when the baseline has no entry of this name.
    pub(crate) in_baseline: bool,
    pub(crate) compressed: Option<Change>,
    pub(crate) unpacked: Option<Change>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Change {
    pub(crate) before: u64,
    pub(crate) after: u64,
    /// after − before, bytes.
    pub(crate) bytes: i64,
    /// 100 × (after − before) / before; None when before is 0.
    pub(crate) percent: Option<f64>,
}

pub(crate) fn change(before: u64, after: u64) -> Change {
    let bytes = after as i64 - before as i64;
    Change {
        before,
        after,
        bytes,
        percent: (before != 0).then(|| bytes as f64 * 100.0 / before as f64),
    }
}

/// The parts of an earlier report that a comparison needs; anything else in it is ignored.
#[derive(Debug, Deserialize)]
struct BaselineDoc {
    images: Vec<BaselineEntry>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BaselineEntry {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) platform: Option<String>,
    #[serde(default)]
    pub(crate) compressed: Option<u64>,
    #[serde(default)]
    pub(crate) unpacked: Option<u64>,
}

pub(super) fn load_baseline(path: &Utf8PathBuf) -> Result<Vec<BaselineEntry>> {
    let doc: BaselineDoc = crate::report::read(path, crate::report::Kind::Sizes)?;
    Ok(doc.images)
}

pub(crate) fn delta(
    baseline: &[BaselineEntry],
    name: &str,
    platform: Option<&str>,
    compressed: Option<u64>,
    unpacked: Option<u64>,
) -> Delta {
    let before = baseline
        .iter()
        .find(|b| b.name == name && b.platform.as_deref() == platform);
    let pair = |before: Option<u64>, after: Option<u64>| match (before, after) {
        (Some(b), Some(a)) => Some(change(b, a)),
        _ => None,
    };
    Delta {
        in_baseline: before.is_some(),
        compressed: pair(before.and_then(|b| b.compressed), compressed),
        unpacked: pair(before.and_then(|b| b.unpacked), unpacked),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Level {
    /// At or above 90 % of the budget.
    Warning,
    /// Above the budget.
    Over,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Finding {
    pub(crate) level: Level,
    pub(crate) message: String,
}

/// Judges one size against its budget: over when above it, a warning from 90 % of it.
pub(crate) fn judge(name: &str, kind: &str, size: u64, budget: Option<u64>) -> Option<Finding> {
    let budget = budget?;
    let percent = if budget == 0 {
        f64::INFINITY
    } else {
        size as f64 * 100.0 / budget as f64
    };
    if size > budget {
        Some(Finding {
            level: Level::Over,
            message: format!(
                "{name}: {kind} size {} exceeds its budget of {} by {} ({:.1} %)",
                human_size(size),
                human_size(budget),
                human_size(size - budget),
                percent - 100.0
            ),
        })
    } else if u128::from(size) * 100 >= u128::from(budget) * u128::from(WARN_PERCENT) {
        Some(Finding {
            level: Level::Warning,
            message: format!(
                "{name}: {kind} size {} is {:.1} % of its budget of {}",
                human_size(size),
                percent,
                human_size(budget)
            ),
        })
    } else {
        None
    }
}

/// Builds the report from the targets and what was measured (pure).
pub(crate) fn build_report(
    engine: String,
    targets: &[Target],
    measured: &dyn Fn(&Target) -> Option<ImageFacts>,
    baseline: Option<&[BaselineEntry]>,
) -> Report {
    let entry = |t: &Target| match measured(t) {
        Some(facts) => judged(t, facts, baseline),
        None => not_built(t, baseline),
    };
    Report {
        engine,
        images: targets.iter().map(entry).collect(),
        registry: Vec::new(),
        run: None,
    }
}

/// The row of a target whose image was measured, judged against its budgets.
fn judged(t: &Target, facts: ImageFacts, baseline: Option<&[BaselineEntry]>) -> Entry {
    let (compressed, unpacked) = (facts.compressed(), facts.unpacked());
    // Findings name the platform too: budgets hold for each platform's image.
    let label = match &t.platform {
        Some(p) => format!("{} ({p})", t.name),
        None => t.name.clone(),
    };
    let findings: Vec<Finding> = [
        judge(&label, "compressed", compressed, t.budget.compressed),
        judge(&label, "unpacked", unpacked, t.budget.unpacked),
    ]
    .into_iter()
    .flatten()
    .collect();
    let status = match findings.iter().map(|f| f.level).max() {
        Some(Level::Over) => Status::OverBudget,
        Some(Level::Warning) => Status::Warning,
        None => Status::Ok,
    };
    let platform = t.platform.as_deref();
    Entry {
        id: Some(facts.id.clone()),
        status,
        compressed: Some(compressed),
        unpacked: Some(unpacked),
        method: Some(facts.method),
        findings,
        delta: baseline.map(|b| delta(b, &t.name, platform, Some(compressed), Some(unpacked))),
        layers: facts.layers,
        ..Entry::of(t)
    }
}

/// The row of a target whose image does not exist, with what to do.
fn not_built(t: &Target, baseline: Option<&[BaselineEntry]>) -> Entry {
    let platform = t.platform.as_deref();
    let hint = match (&t.variant, platform) {
        (Some(v), Some(p)) => format!("no {p} image: run `cargo xtask build {v} --platform {p}`"),
        (Some(v), None) => format!("not built: run `cargo xtask build {v}`"),
        (None, Some(p)) => format!("`{}` has no {p} image in the engine", t.image),
        (None, None) => format!("no image `{}` in the engine", t.image),
    };
    Entry {
        hint: Some(hint),
        delta: baseline.map(|b| delta(b, &t.name, platform, None, None)),
        ..Entry::of(t)
    }
}

impl Entry {
    /// The target's row before anything is known of its image.
    fn of(t: &Target) -> Entry {
        Entry {
            name: t.name.clone(),
            variant: t.variant.clone(),
            image: t.image.clone(),
            platform: t.platform.clone(),
            id: None,
            status: Status::NotBuilt,
            compressed: None,
            unpacked: None,
            method: None,
            budget: BudgetOut {
                compressed: t.budget.compressed,
                unpacked: t.budget.unpacked,
            },
            findings: Vec::new(),
            hint: None,
            delta: None,
            layers: Vec::new(),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::sizes::facts::{Store, UnpackedFrom, FACTS_VERSION};

    pub(crate) fn facts(id: &str, layers: &[(u64, u64, &str)]) -> ImageFacts {
        ImageFacts {
            version: FACTS_VERSION,
            id: id.into(),
            store: Store::Containerd,
            method: Method::Stored,
            compressor: None,
            layers: layers
                .iter()
                .enumerate()
                .map(|(i, (c, u, by))| Layer {
                    digest: format!("sha256:{i}"),
                    diff_id: format!("sha256:d{i}"),
                    media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                    compressed: *c,
                    unpacked: *u,
                    unpacked_from: UnpackedFrom::Decompressed,
                    created_by: (*by).into(),
                })
                .collect(),
        }
    }
    pub(crate) fn target(name: &str, compressed: Option<u64>, unpacked: Option<u64>) -> Target {
        Target {
            push_zstd: false,
            name: name.into(),
            variant: Some(name.into()),
            image: format!("voxserve:{name}"),
            platform: None,
            budget: Budget {
                compressed,
                unpacked,
                ..Budget::default()
            },
        }
    }

    #[test]
    fn budgets_judge_over_warning_and_ok() {
        let over = judge("cpu", "unpacked", 950_000_000, Some(900_000_000)).unwrap();
        assert_eq!(over.level, Level::Over);
        assert_eq!(
            over.message,
            "cpu: unpacked size 950.0 MB exceeds its budget of 900.0 MB by 50.0 MB (5.6 %)"
        );
        let warn = judge("cpu", "compressed", 90, Some(100)).unwrap();
        assert_eq!(warn.level, Level::Warning);
        assert!(
            warn.message.contains("90.0 % of its budget"),
            "{}",
            warn.message
        );
        // Exactly the budget is within it (a warning), one byte more is over.
        assert_eq!(
            judge("x", "c", 100, Some(100)).unwrap().level,
            Level::Warning
        );
        assert_eq!(judge("x", "c", 101, Some(100)).unwrap().level, Level::Over);
        assert_eq!(judge("x", "c", 89, Some(100)), None);
        assert_eq!(judge("x", "c", 10_u64.pow(12), None), None);
    }

    /// Three targets: one near its budget with a baseline, one over, one not built.
    pub(crate) fn sample_report() -> Report {
        let targets = [
            target("cpu", None, Some(1000)),
            target("small", Some(500), None),
            target("cuda", None, None),
        ];
        let measured = |t: &Target| match t.image.as_str() {
            "voxserve:cpu" => Some(facts("sha256:a", &[(300, 950, "ADD x /")])),
            "voxserve:small" => Some(facts("sha256:b", &[(600, 700, "RUN y")])),
            _ => None,
        };
        let baseline = [BaselineEntry {
            name: "cpu".into(),
            platform: None,
            compressed: Some(200),
            unpacked: Some(1000),
        }];
        build_report("e".into(), &targets, &measured, Some(&baseline))
    }

    #[test]
    fn report_judges_each_target_and_names_missing_builds() {
        let report = sample_report();
        let [cpu, small, cuda] = &report.images[..] else {
            panic!("{report:?}")
        };
        assert_eq!(cpu.status, Status::Warning);
        assert_eq!(small.status, Status::OverBudget);
        assert!(small.findings[0]
            .message
            .starts_with("small: compressed size 600 B exceeds"));
        assert_eq!(cpu.findings[0].level, Level::Warning);
        assert_eq!(cuda.status, Status::NotBuilt);
        assert_eq!(
            cuda.hint.as_deref(),
            Some("not built: run `cargo xtask build cuda`")
        );
        let d = cpu.delta.as_ref().unwrap();
        assert_eq!(d.compressed.as_ref().unwrap().bytes, 100);
        assert_eq!(d.unpacked.as_ref().unwrap().bytes, -50);
        assert!(!small.delta.as_ref().unwrap().in_baseline);

        // The JSON report reads back as a baseline.
        let json = serde_json::to_string(&report).unwrap();
        let doc: BaselineDoc = serde_json::from_str(&json).unwrap();
        assert_eq!(doc.images[0].compressed, Some(300));
        assert_eq!(doc.images[2].unpacked, None);
    }

    #[test]
    fn each_platform_of_an_index_is_judged_and_compared_on_its_own() {
        let mut amd64 = target("cpu-minimal", None, Some(1000));
        amd64.platform = Some("linux/amd64".into());
        let mut arm64 = amd64.clone();
        arm64.platform = Some("linux/arm64".into());
        let mut s390x = amd64.clone();
        s390x.platform = Some("linux/s390x".into());
        let measured = |t: &Target| match t.platform.as_deref() {
            Some("linux/amd64") => Some(facts("sha256:a", &[(300, 900, "RUN x")])),
            Some("linux/arm64") => Some(facts("sha256:b", &[(320, 1100, "RUN x")])),
            _ => None,
        };
        let baseline = [BaselineEntry {
            name: "cpu-minimal".into(),
            platform: Some("linux/arm64".into()),
            compressed: Some(300),
            unpacked: Some(1000),
        }];
        let report = build_report(
            "e".into(),
            &[amd64, arm64, s390x],
            &measured,
            Some(&baseline),
        );
        let [a, b, c] = &report.images[..] else {
            panic!("{report:?}")
        };
        assert_eq!(
            (a.status.clone(), a.platform.as_deref()),
            (Status::Warning, Some("linux/amd64"))
        );
        assert_eq!(b.status, Status::OverBudget);
        assert!(
            b.findings[0]
                .message
                .starts_with("cpu-minimal (linux/arm64): unpacked size"),
            "{}",
            b.findings[0].message
        );
        assert!(!a.delta.as_ref().unwrap().in_baseline);
        assert_eq!(
            b.delta.as_ref().unwrap().unpacked.as_ref().unwrap().bytes,
            100
        );
        assert_eq!(
            c.hint.as_deref(),
            Some(
                "no linux/s390x image: run `cargo xtask build cpu-minimal --platform linux/s390x`"
            )
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["images"][1]["platform"], "linux/arm64");
    }
}
