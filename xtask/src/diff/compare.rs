//! Judge (pure): two images' config fields, their layers paired by position, and each differing
//! pair's files — added, removed, or changed in content, type, mode, owner, mtime, link or xattrs.

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

use super::layer::{FileFacts, Files};

/// One image as the comparison sees it.
pub(crate) struct Image {
    pub(crate) side: Side,
    pub(crate) config: Value,
    pub(crate) layers: Vec<LayerSide>,
    /// The instruction that made each layer (the config's history).
    pub(crate) created_by: Vec<String>,
}

/// What names one image in the report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Side {
    pub(crate) name: String,
    pub(crate) platform: String,
    /// The index the image was found in, when there was one with a digest.
    pub(crate) index: Option<String>,
    pub(crate) manifest: String,
    pub(crate) config: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct LayerSide {
    /// The blob as stored (compressed).
    pub(crate) digest: String,
    /// The uncompressed tar's digest (the config's `rootfs.diff_ids`).
    pub(crate) diff_id: Option<String>,
    pub(crate) size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum LayerStatus {
    Same,
    /// The same files, compressed into other bytes.
    Recompressed,
    Differs,
    OnlyA,
    OnlyB,
}

#[derive(Debug, Serialize)]
pub(crate) struct LayerDiff {
    /// 0 is the bottom layer.
    pub(crate) index: usize,
    pub(crate) created_by: String,
    pub(crate) a: Option<LayerSide>,
    pub(crate) b: Option<LayerSide>,
    pub(crate) status: LayerStatus,
    pub(crate) files: Vec<FileChange>,
}

impl LayerDiff {
    /// Whether its files must be read to say what differs.
    pub(crate) fn needs_files(&self) -> bool {
        matches!(
            self.status,
            LayerStatus::Differs | LayerStatus::OnlyA | LayerStatus::OnlyB
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Change {
    Added,
    Removed,
    Changed,
}

#[derive(Debug, Serialize)]
pub(crate) struct FileChange {
    pub(crate) path: String,
    pub(crate) change: Change,
    /// What differs: `type`, `content`, `size`, `mode`, `owner`, `mtime`, `link`, `xattrs`.
    pub(crate) fields: Vec<&'static str>,
    pub(crate) a: Option<FileFacts>,
    pub(crate) b: Option<FileFacts>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ConfigChange {
    /// `created`, `config.Env[2]`, `rootfs.diff_ids[5]`, `history[7].created_by`, …
    pub(crate) field: String,
    pub(crate) a: Option<Value>,
    pub(crate) b: Option<Value>,
}

/// The whole comparison; `--format json` prints it.
#[derive(Debug, Serialize)]
pub(crate) struct Diff {
    pub(crate) a: Side,
    pub(crate) b: Side,
    /// The same manifest: the same image, byte for byte.
    pub(crate) identical: bool,
    pub(crate) config: Vec<ConfigChange>,
    pub(crate) layers: Vec<LayerDiff>,
}

/// The layers of `a` and `b` paired by position, each with its status (files not read yet).
pub(crate) fn pair_layers(a: &Image, b: &Image) -> Vec<LayerDiff> {
    let count = a.layers.len().max(b.layers.len());
    (0..count)
        .map(|i| {
            let (la, lb) = (a.layers.get(i).cloned(), b.layers.get(i).cloned());
            let status = match (&la, &lb) {
                (Some(x), Some(y)) if x.digest == y.digest => LayerStatus::Same,
                (Some(x), Some(y)) if x.diff_id.is_some() && x.diff_id == y.diff_id => {
                    LayerStatus::Recompressed
                }
                (Some(_), Some(_)) => LayerStatus::Differs,
                (Some(_), None) => LayerStatus::OnlyA,
                (None, _) => LayerStatus::OnlyB,
            };
            let created_by = b
                .created_by
                .get(i)
                .or(a.created_by.get(i))
                .cloned()
                .unwrap_or_default();
            LayerDiff {
                index: i,
                created_by,
                a: la,
                b: lb,
                status,
                files: Vec::new(),
            }
        })
        .collect()
}

/// The report: config fields that differ, and the layers with their file changes filled in.
pub(crate) fn judge(a: Image, b: Image, layers: Vec<LayerDiff>) -> Diff {
    Diff {
        identical: a.side.manifest == b.side.manifest,
        config: config_changes(&a.config, &b.config),
        a: a.side,
        b: b.side,
        layers,
    }
}

/// Every leaf of the two configs that differs, by its path, in the configs' order.
pub(crate) fn config_changes(a: &Value, b: &Value) -> Vec<ConfigChange> {
    let (mut fa, mut fb) = (Vec::new(), Vec::new());
    flatten(a, String::new(), &mut fa);
    flatten(b, String::new(), &mut fb);
    let (ma, mb): (BTreeMap<_, _>, BTreeMap<_, _>) = (
        fa.iter().map(|(k, v)| (k, v)).collect(),
        fb.iter().map(|(k, v)| (k, v)).collect(),
    );
    let only_b = fb.iter().filter(|(k, _)| !ma.contains_key(k));
    fa.iter()
        .chain(only_b)
        .filter(|(k, _)| ma.get(k) != mb.get(k))
        .map(|(k, _)| ConfigChange {
            field: k.clone(),
            a: ma.get(k).map(|v| (*v).clone()),
            b: mb.get(k).map(|v| (*v).clone()),
        })
        .collect()
}

/// The leaves of a JSON document with their paths, in document order.
fn flatten(value: &Value, path: String, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                flatten(v, child, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                flatten(v, format!("{path}[{i}]"), out);
            }
        }
        leaf => out.push((path, leaf.clone())),
    }
}

/// The files of a layer pair that were added, removed or changed, by path.
pub(crate) fn file_changes(a: &Files, b: &Files) -> Vec<FileChange> {
    let paths: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    paths
        .into_iter()
        .filter_map(|path| {
            let (fa, fb) = (a.get(path), b.get(path));
            let (change, fields) = match (fa, fb) {
                (Some(x), Some(y)) => match changed_fields(x, y) {
                    fields if fields.is_empty() => return None,
                    fields => (Change::Changed, fields),
                },
                (Some(_), None) => (Change::Removed, Vec::new()),
                (None, _) => (Change::Added, Vec::new()),
            };
            Some(FileChange {
                path: path.clone(),
                change,
                fields,
                a: fa.cloned(),
                b: fb.cloned(),
            })
        })
        .collect()
}

/// What differs between two records of one path.
pub(crate) fn changed_fields(a: &FileFacts, b: &FileFacts) -> Vec<&'static str> {
    let checks: [(&'static str, bool); 8] = [
        ("type", a.kind != b.kind),
        ("content", a.sha256 != b.sha256),
        ("size", a.size != b.size),
        ("mode", a.mode != b.mode),
        ("owner", (a.uid, a.gid) != (b.uid, b.gid)),
        ("mtime", a.mtime != b.mtime),
        ("link", a.link != b.link),
        ("xattrs", a.xattrs != b.xattrs),
    ];
    checks
        .into_iter()
        .filter(|(_, d)| *d)
        .map(|(f, _)| f)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn file(content: &str, mtime: u64) -> FileFacts {
        FileFacts {
            kind: "file",
            mode: "0644".into(),
            uid: 0,
            gid: 0,
            size: content.len() as u64,
            mtime,
            link: None,
            xattrs: BTreeMap::new(),
            sha256: Some(content.into()),
        }
    }

    #[test]
    fn config_fields_are_named_by_their_path() {
        let a = json!({"created": "x", "config": {"Env": ["A=1", "B=2"]}, "rootfs": {"diff_ids": ["d1"]}});
        let b = json!({"created": "x", "config": {"Env": ["A=1", "B=3"]}, "rootfs": {"diff_ids": ["d1", "d2"]}});
        let fields: Vec<String> = config_changes(&a, &b)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(fields, ["config.Env[1]", "rootfs.diff_ids[1]"]);
        // Array positions in order: [2] before [10].
        let many = |n: u64| json!({"history": (0..11).map(|i| if i == 2 || i == 10 { n } else { 0 }).collect::<Vec<_>>()});
        let fields: Vec<String> = config_changes(&many(1), &many(2))
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(fields, ["history[2]", "history[10]"]);
        assert!(config_changes(&a, &a).is_empty());
    }

    #[test]
    fn files_are_added_removed_or_changed_in_named_fields() {
        let a = Files::from([
            ("/same".into(), file("x", 1)),
            ("/old".into(), file("o", 1)),
            ("/stamp".into(), file("Fri", 5)),
        ]);
        let b = Files::from([
            ("/same".into(), file("x", 1)),
            ("/new".into(), file("n", 1)),
            ("/stamp".into(), file("Sat", 6)),
        ]);
        let changes = file_changes(&a, &b);
        let summary: Vec<(&str, Change, Vec<&str>)> = changes
            .iter()
            .map(|c| (c.path.as_str(), c.change, c.fields.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                ("/new", Change::Added, vec![]),
                ("/old", Change::Removed, vec![]),
                ("/stamp", Change::Changed, vec!["content", "mtime"]),
            ]
        );
    }

    fn image(layers: &[(&str, &str)]) -> Image {
        Image {
            side: Side {
                name: "x".into(),
                platform: "linux/amd64".into(),
                index: None,
                manifest: "m".into(),
                config: "c".into(),
            },
            config: json!({}),
            layers: layers
                .iter()
                .map(|(digest, diff_id)| LayerSide {
                    digest: digest.to_string(),
                    diff_id: Some(diff_id.to_string()),
                    size: 1,
                })
                .collect(),
            created_by: vec!["FROM".into(), "RUN date > /stamp".into()],
        }
    }

    #[test]
    fn layers_pair_by_position() {
        let a = image(&[("g1", "d1"), ("g2", "d2"), ("g3", "d3")]);
        let b = image(&[("g1", "d1"), ("z2", "d2"), ("g4", "d4"), ("g5", "d5")]);
        let statuses: Vec<LayerStatus> = pair_layers(&a, &b).iter().map(|l| l.status).collect();
        assert_eq!(
            statuses,
            [
                LayerStatus::Same,
                LayerStatus::Recompressed,
                LayerStatus::Differs,
                LayerStatus::OnlyB
            ]
        );
        assert_eq!(pair_layers(&a, &b)[1].created_by, "RUN date > /stamp");
        assert_eq!(pair_layers(&b, &a)[3].status, LayerStatus::OnlyA);
    }
}
