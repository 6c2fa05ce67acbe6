//! The plan of `bench pull` (pure): the image's layers, which of them hold the venv, and the
//! images to push — the layers as built, and the same venv in one layer as before issue 13 — each
//! with gzip and with zstd layers; and the config of a rewritten image.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::ops::Range;

use xtask::build_cmd::Compression;

/// One layer of the measured image, as the local store holds it.
#[derive(Debug, Clone, Serialize)]
pub struct SourceLayer {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub diff_id: String,
    /// The instruction that made it (from the config's history).
    pub created_by: String,
}

/// How a stored blob is encoded, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Plain,
    Gzip,
    Zstd,
}

impl Encoding {
    pub fn of(media_type: &str) -> Result<Encoding> {
        if media_type.ends_with("+gzip") || media_type.ends_with(".tar.gzip") {
            Ok(Encoding::Gzip)
        } else if media_type.ends_with("+zstd") || media_type.ends_with(".tar.zstd") {
            Ok(Encoding::Zstd)
        } else if media_type.ends_with(".tar") || media_type.ends_with("rootfs.diff.tar") {
            Ok(Encoding::Plain)
        } else {
            bail!("layer media type `{media_type}` is not a tar, gzip or zstd layer")
        }
    }

    pub fn of_compression(c: Compression) -> Encoding {
        match c {
            Compression::Gzip => Encoding::Gzip,
            Compression::Zstd => Encoding::Zstd,
        }
    }
}

/// The OCI media type of a layer compressed with `c`.
pub fn layer_media_type(c: Compression) -> &'static str {
    match c {
        Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

/// How the venv is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// The venv in one layer, as every image was before the layers by change rate.
    OneVenvLayer,
    /// The layers as built (nvidia ×3, the torch family, the rest of the venv for cuda).
    Split,
}

impl Layout {
    pub fn label(self) -> &'static str {
        match self {
            Layout::OneVenvLayer => "one venv layer",
            Layout::Split => "layers as built",
        }
    }

    pub fn slug(self) -> &'static str {
        match self {
            Layout::OneVenvLayer => "one-venv-layer",
            Layout::Split => "split",
        }
    }
}

/// A layer of a planned image: one of the source's, or several merged into one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Layer(usize),
    Merged(Range<usize>),
}

/// An image to push and pull.
#[derive(Debug, Clone)]
pub struct ImagePlan {
    pub layout: Layout,
    pub compression: Compression,
    pub parts: Vec<Part>,
}

impl ImagePlan {
    /// Its tag in the bench's registry.
    pub fn tag(&self) -> String {
        format!("{}-{}", self.layout.slug(), self.compression.as_str())
    }

    pub fn label(&self) -> String {
        format!("{}, {}", self.layout.label(), self.compression.as_str())
    }
}

/// The venv's layers: those whose instruction contains one of `texts`, which must follow one
/// another.
pub fn venv_layers(layers: &[SourceLayer], texts: &[String]) -> Result<Range<usize>> {
    let hits: Vec<usize> = layers
        .iter()
        .enumerate()
        .filter(|(_, l)| texts.iter().any(|t| l.created_by.contains(t.as_str())))
        .map(|(i, _)| i)
        .collect();
    let texts = texts
        .iter()
        .map(|t| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(" or ");
    let (Some(&first), Some(&last)) = (hits.first(), hits.last()) else {
        bail!(
            "no layer of the image was made by an instruction containing {texts}: name the \
             venv's layers with --venv TEXT (see `cargo xtask sizes --layers 20`)"
        );
    };
    if last - first + 1 != hits.len() {
        let numbers: Vec<String> = hits.iter().map(|i| (i + 1).to_string()).collect();
        bail!(
            "the layers made by instructions containing {texts} ({}) do not follow one \
             another: one layer in their place would change what the layers between them see",
            numbers.join(", ")
        );
    }
    Ok(first..last + 1)
}

/// The images, the reference first: the venv in one layer with gzip — as every image was pushed
/// before — then with zstd, then the layers as built with gzip and zstd. When the venv is one
/// layer already, the two layouts are the same image and only the layers as built are pushed.
pub fn images(layers: usize, venv: &Range<usize>) -> Vec<ImagePlan> {
    let mut out = Vec::new();
    let layouts = if venv.len() > 1 {
        vec![Layout::OneVenvLayer, Layout::Split]
    } else {
        vec![Layout::Split]
    };
    for layout in layouts {
        let parts: Vec<Part> = match layout {
            Layout::Split => (0..layers).map(Part::Layer).collect(),
            Layout::OneVenvLayer => (0..venv.start)
                .map(Part::Layer)
                .chain([Part::Merged(venv.clone())])
                .chain((venv.end..layers).map(Part::Layer))
                .collect(),
        };
        for compression in [Compression::Gzip, Compression::Zstd] {
            out.push(ImagePlan {
                layout,
                compression,
                parts: parts.clone(),
            });
        }
    }
    out
}

/// The config of a planned image: the source's, byte for byte, when no layer was merged (the
/// image keeps its ID); else with the new diff IDs and one history entry for the merged layers.
pub fn config_for(source: &[u8], parts: &[Part], diff_ids: &[String]) -> Result<Vec<u8>> {
    let merged: Vec<&Range<usize>> = parts
        .iter()
        .filter_map(|p| match p {
            Part::Merged(r) => Some(r),
            Part::Layer(_) => None,
        })
        .collect();
    if merged.is_empty() {
        return Ok(source.to_vec());
    }
    let mut config: serde_json::Value =
        serde_json::from_slice(source).context("parsing the image config")?;
    config["rootfs"]["diff_ids"] = serde_json::json!(diff_ids);
    if let Some(history) = config["history"].as_array().cloned() {
        let mut out = Vec::new();
        let mut layer = 0usize;
        for entry in history {
            if entry["empty_layer"].as_bool() == Some(true) {
                out.push(entry);
                continue;
            }
            match merged.iter().find(|r| r.contains(&layer)) {
                Some(r) if layer == r.start => {
                    let mut one = entry.clone();
                    one["created_by"] = serde_json::json!(format!(
                        "layers {}–{} of the image as one layer (cargo xtask bench pull)",
                        r.start + 1,
                        r.end
                    ));
                    out.push(one);
                }
                Some(_) => {}
                None => out.push(entry),
            }
            layer += 1;
        }
        config["history"] = serde_json::Value::Array(out);
    }
    serde_json::to_vec(&config).context("writing the image config")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(created_by: &str) -> SourceLayer {
        SourceLayer {
            digest: "sha256:00".into(),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            size: 1,
            diff_id: "sha256:11".into(),
            created_by: created_by.into(),
        }
    }

    #[test]
    fn the_venv_is_the_run_of_layers_that_name_it() {
        let layers = [
            layer("ADD rootfs.tar /"),
            layer("COPY --chown=0:0 /layers/nvidia-1/ / # buildkit"),
            layer("COPY --chown=0:0 /layers/torch/ / # buildkit"),
            layer("COPY --chown=0:0 /image/ / # buildkit"),
            layer("RUN /opt/venv/bin/python -B /tmp/smoke_test.py # buildkit"),
            layer("COPY --chown=0:0 /app-src/ / # buildkit"),
        ];
        let texts = |t: &[&str]| t.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        let default = texts(&["/layers/", "/image/", "/opt/venv"]);
        assert_eq!(venv_layers(&layers, &default).unwrap(), 1..5);
        assert_eq!(venv_layers(&layers, &texts(&["/layers/"])).unwrap(), 1..3);
        let err = venv_layers(&layers, &texts(&["/nowhere"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`/nowhere`") && err.contains("--venv"),
            "{err}"
        );
        let gap = [layers[1].clone(), layers[0].clone(), layers[3].clone()];
        let err = venv_layers(&gap, &default).unwrap_err().to_string();
        assert!(err.contains("(1, 3) do not follow"), "{err}");
    }

    #[test]
    fn four_images_with_the_reference_first_or_two_when_the_venv_is_one_layer() {
        let four = images(5, &(1..4));
        let tags: Vec<String> = four.iter().map(ImagePlan::tag).collect();
        assert_eq!(
            tags,
            [
                "one-venv-layer-gzip",
                "one-venv-layer-zstd",
                "split-gzip",
                "split-zstd"
            ]
        );
        assert_eq!(
            four[0].parts,
            [Part::Layer(0), Part::Merged(1..4), Part::Layer(4)]
        );
        assert_eq!(four[2].parts.len(), 5);
        let two = images(5, &(3..4));
        assert_eq!(two.len(), 2);
        assert!(two.iter().all(|i| i.layout == Layout::Split));
    }

    #[test]
    fn a_merged_config_has_the_new_diff_ids_and_one_history_entry() {
        let source = br#"{"architecture":"amd64","rootfs":{"type":"layers","diff_ids":["a","b","c","d"]},
            "history":[{"created_by":"ADD"},{"created_by":"ENV X=1","empty_layer":true},
            {"created_by":"COPY one /opt/venv/"},{"created_by":"COPY two /opt/venv"},{"created_by":"COPY app"}]}"#;
        let split = config_for(source, &[Part::Layer(0)], &[]).unwrap();
        assert_eq!(
            split, source,
            "an unmerged image keeps its config byte for byte"
        );
        let parts = [Part::Layer(0), Part::Merged(1..3), Part::Layer(3)];
        let ids = ["a".to_string(), "bc".into(), "d".into()];
        let out: serde_json::Value =
            serde_json::from_slice(&config_for(source, &parts, &ids).unwrap()).unwrap();
        assert_eq!(
            out["rootfs"]["diff_ids"],
            serde_json::json!(["a", "bc", "d"])
        );
        let history: Vec<&str> = out["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["created_by"].as_str().unwrap())
            .collect();
        assert_eq!(
            history,
            [
                "ADD",
                "ENV X=1",
                "layers 2–3 of the image as one layer (cargo xtask bench pull)",
                "COPY app"
            ]
        );
        assert_eq!(out["architecture"], "amd64");
    }

    #[test]
    fn media_types_say_the_encoding() {
        assert_eq!(
            Encoding::of("application/vnd.docker.image.rootfs.diff.tar.gzip").unwrap(),
            Encoding::Gzip
        );
        assert_eq!(
            Encoding::of(layer_media_type(Compression::Zstd)).unwrap(),
            Encoding::Zstd
        );
        assert_eq!(
            Encoding::of("application/vnd.oci.image.layer.v1.tar").unwrap(),
            Encoding::Plain
        );
        assert!(Encoding::of("application/json").is_err());
    }
}
