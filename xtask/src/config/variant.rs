//! `[defaults]` and `[variants.NAME]`: a variant's values over the defaults', one resolver per
//! table, each value checked where it is written (`images.toml:LINE:COL: variant `NAME`: …`).
//! The variant's files are found and its Dockerfile read first ([`files::locate`]); the
//! resolvers below read no file but what they are handed.

use anyhow::Result;
use camino::Utf8Path;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

use super::files::{self, Files, Repository};
use super::located::{At, Located, Str};
use super::names::{self, Reference};
use super::smoke::{self, RawSmoke};
use super::values::parse_size;
use super::{dockerfile, scan};
use super::{Budget, Compression, Dive, Variant};

#[derive(Deserialize, Default, Clone)]
#[serde(
    deny_unknown_fields,
    expecting = r#"a table of variant settings like { dockerfile = "Dockerfile", image = "voxserve" }"#
)]
pub(super) struct RawVariant {
    description: Option<String>,
    dockerfile: Option<Str>,
    context: Option<Str>,
    target: Option<Str>,
    image: Option<Str>,
    tags: Option<Vec<Str>>,
    build_args: Option<BTreeMap<Str, String>>,
    platforms: Option<Vec<Str>>,
    push_compression: Option<Str>,
    budget: Option<RawBudget>,
    smoke: Option<RawSmoke>,
    scan: Option<scan::RawScan>,
    dive: Option<RawDive>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawDive {
    lowest_efficiency: Option<Spanned<f64>>,
    highest_wasted_bytes: Option<Spanned<String>>,
    highest_user_wasted_percent: Option<Spanned<f64>>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(
    deny_unknown_fields,
    expecting = r#"a table like { compressed = "2.5 GB", unpacked = "4 GB" }"#
)]
struct RawBudget {
    compressed: Option<Str>,
    unpacked: Option<Str>,
    #[serde(default)]
    platforms: Option<BTreeMap<String, RawPlatformBudget>>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(
    deny_unknown_fields,
    expecting = r#"a table like { unpacked = "225 MB" }"#
)]
struct RawPlatformBudget {
    compressed: Option<Str>,
    unpacked: Option<Str>,
}

/// The variant `name` (declared at `span`) with the defaults applied, every value checked.
pub(super) fn resolve_variant(
    loc: &Located,
    dir: &Utf8Path,
    repository: &Repository,
    defaults: &RawVariant,
    name: &str,
    v: RawVariant,
    span: Range<usize>,
) -> Result<Variant> {
    let at = At { loc, variant: name };
    if let Err(e) = names::check_tag(name) {
        let msg = format!("the variant name becomes an image tag, and {e}");
        return Err(at.err(Some(span), msg));
    }
    let dockerfile = v.dockerfile.or_else(|| defaults.dockerfile.clone());
    let dockerfile = dockerfile.ok_or_else(|| {
        let msg = "no `dockerfile` (set it in the variant or in [defaults])";
        at.err(Some(span.clone()), msg)
    })?;
    let context = v.context.or_else(|| defaults.context.clone());
    let files = files::locate(&at, dir, repository, &dockerfile, context.as_ref())?;
    let target = target(&at, &files, v.target.or_else(|| defaults.target.clone()))?;
    let build_args = build_args(&at, &files, defaults.build_args.clone(), v.build_args)?;
    let budget = budget(&at, defaults.budget.clone(), v.budget)?;
    let compression = v
        .push_compression
        .or_else(|| defaults.push_compression.clone());
    let push_compression = push_compression(&at, compression)?;
    let bad = |s: &Str, key: &str, msg: String| at.bad(s, key, msg);
    let (ds, vs) = (defaults.smoke.clone(), v.smoke);
    let smoke = smoke::resolve_smoke(&bad, dir, ds.unwrap_or_default(), vs.unwrap_or_default())?;
    let scan = scan::resolve(loc, dir, name, defaults.scan.clone(), v.scan, &span)?;
    let dive = dive(&at, defaults.dive.clone(), v.dive)?;
    let image = image(&at, &span, v.image.or_else(|| defaults.image.clone()))?;
    let tags = tags(&at, v.tags.or_else(|| defaults.tags.clone()))?;
    let platforms = platforms(
        &at,
        v.platforms.or_else(|| defaults.platforms.clone()),
        &budget,
    )?;
    Ok(Variant {
        name: name.to_owned(),
        description: v
            .description
            .or_else(|| defaults.description.clone())
            .unwrap_or_default(),
        dockerfile: files.dockerfile,
        context: files.context,
        target,
        image,
        tags,
        build_args,
        platforms,
        push_compression,
        budget,
        smoke,
        scan,
        dive,
    })
}

/// `target`: a stage the Dockerfile names (BuildKit matches it case-insensitively).
fn target(at: &At, files: &Files, target: Option<Str>) -> Result<Option<String>> {
    let Some(t) = target else { return Ok(None) };
    let stages = &files.facts.stages;
    if !stages.contains(&t.get_ref().to_ascii_lowercase()) {
        let named = if stages.is_empty() {
            "it names none (`FROM … AS NAME`)".to_string()
        } else {
            format!("its stages are {}", stages.join(", "))
        };
        let file = files.dockerfile_name();
        let msg = format!("{file} has no stage `{}`; {named}", t.get_ref());
        return Err(at.bad(&t, "target", msg));
    }
    Ok(Some(t.into_inner()))
}

/// `build_args`: the defaults' with the variant's over them, each an ARG the Dockerfile declares
/// (or one BuildKit predefines).
fn build_args(
    at: &At,
    files: &Files,
    defaults: Option<BTreeMap<Str, String>>,
    variant: Option<BTreeMap<Str, String>>,
) -> Result<BTreeMap<String, String>> {
    let declared = &files.facts.args;
    let mut args = BTreeMap::new();
    for (key, value) in defaults.into_iter().chain(variant).flatten() {
        let k = key.get_ref();
        if !declared.contains(k) && !dockerfile::is_predefined_arg(k) {
            let listed: Vec<&str> = declared.iter().map(String::as_str).collect();
            let listed = if listed.is_empty() {
                "none".to_string()
            } else {
                listed.join(", ")
            };
            let file = files.dockerfile_name();
            let msg = format!(
                "{file} declares no `ARG {k}`, so BuildKit would ignore it; its ARGs: {listed}"
            );
            return Err(at.bad(&key, "build_args", msg));
        }
        args.insert(key.into_inner(), value);
    }
    Ok(args)
}

/// `budget`: each size over the defaults', the per-platform budgets as one table.
fn budget(at: &At, defaults: Option<RawBudget>, variant: Option<RawBudget>) -> Result<Budget> {
    let (d, v) = (defaults.unwrap_or_default(), variant.unwrap_or_default());
    let mut platforms = BTreeMap::new();
    for (platform, pb) in v.platforms.or(d.platforms).unwrap_or_default() {
        names::check_platform(&platform).map_err(|e| {
            let span = pb.compressed.as_ref().or(pb.unpacked.as_ref());
            at.err(span.map(Spanned::span), format!("budget.platforms: {e}"))
        })?;
        let budget = Budget {
            compressed: size(at, pb.compressed, "compressed")?,
            unpacked: size(at, pb.unpacked, "unpacked")?,
            platforms: BTreeMap::new(),
        };
        platforms.insert(platform, budget);
    }
    Ok(Budget {
        compressed: size(at, v.compressed.or(d.compressed), "compressed")?,
        unpacked: size(at, v.unpacked.or(d.unpacked), "unpacked")?,
        platforms,
    })
}

/// One budget size, above 0.
fn size(at: &At, s: Option<Str>, kind: &str) -> Result<Option<u64>> {
    let Some(s) = s else { return Ok(None) };
    let key = format!("budget.{kind}");
    let bytes = parse_size(s.get_ref()).map_err(|e| at.bad(&s, &key, e))?;
    if bytes == 0 {
        let msg = format!(
            "`{}` leaves no room at all; give a size above 0, or remove `{kind}` for no budget",
            s.get_ref()
        );
        return Err(at.bad(&s, &key, msg));
    }
    Ok(Some(bytes))
}

fn push_compression(at: &At, compression: Option<Str>) -> Result<Option<Compression>> {
    let Some(c) = compression else {
        return Ok(None);
    };
    let parsed = Compression::parse(c.get_ref());
    parsed
        .map(Some)
        .map_err(|e| at.err(Some(c.span()), format!("push_compression: {e}")))
}

/// `dive`: each threshold over the defaults'.
fn dive(at: &At, defaults: Option<RawDive>, variant: Option<RawDive>) -> Result<Dive> {
    let (d, v) = (defaults.unwrap_or_default(), variant.unwrap_or_default());
    let ratio = |key: &str, r: Option<Spanned<f64>>| -> Result<Option<f64>> {
        match r {
            Some(r) if !(0.0..=1.0).contains(r.get_ref()) => Err(at.err(
                Some(r.span()),
                format!("dive.{key}: {} is not a ratio between 0 and 1", r.get_ref()),
            )),
            r => Ok(r.map(Spanned::into_inner)),
        }
    };
    let wasted = v.highest_wasted_bytes.or(d.highest_wasted_bytes);
    let wasted = wasted.map(|s| {
        parse_size(s.get_ref())
            .map_err(|e| at.err(Some(s.span()), format!("dive.highest_wasted_bytes: {e}")))
    });
    let efficiency = v.lowest_efficiency.or(d.lowest_efficiency);
    let user_wasted = v
        .highest_user_wasted_percent
        .or(d.highest_user_wasted_percent);
    Ok(Dive {
        lowest_efficiency: ratio("lowest_efficiency", efficiency)?,
        highest_wasted_bytes: wasted.transpose()?,
        highest_user_wasted_percent: ratio("highest_user_wasted_percent", user_wasted)?,
    })
}

/// `image`: the repository name the variant is tagged under.
fn image(at: &At, span: &Range<usize>, image: Option<Str>) -> Result<String> {
    let image = image.ok_or_else(|| {
        let msg = "no `image` repository name (set it in the variant or in [defaults])";
        at.err(Some(span.clone()), msg)
    })?;
    names::check_reference(image.get_ref(), Reference::Repository)
        .map_err(|e| at.bad(&image, "image", e))?;
    Ok(image.into_inner())
}

fn tags(at: &At, tags: Option<Vec<Str>>) -> Result<Vec<String>> {
    let tags = tags.unwrap_or_default();
    for tag in &tags {
        names::check_reference(tag.get_ref(), Reference::Tagged)
            .map_err(|e| at.bad(tag, "tags", e))?;
    }
    Ok(tags.into_iter().map(Spanned::into_inner).collect())
}

/// `platforms`: each once, and every platform `budget.platforms` names among them.
fn platforms(at: &At, platforms: Option<Vec<Str>>, budget: &Budget) -> Result<Vec<String>> {
    let platforms = platforms.unwrap_or_default();
    for (i, p) in platforms.iter().enumerate() {
        names::check_platform(p.get_ref()).map_err(|e| at.bad(p, "platforms", e))?;
        if platforms[..i].iter().any(|q| q.get_ref() == p.get_ref()) {
            let msg = format!("`{}` is listed twice", p.get_ref());
            return Err(at.bad(p, "platforms", msg));
        }
    }
    let listed: Vec<String> = platforms.into_iter().map(Spanned::into_inner).collect();
    if let Some(p) = budget.platforms.keys().find(|p| !listed.contains(p)) {
        return Err(at.err(
            None,
            format!(
                "budget.platforms: `{p}` is not one of the variant's platforms ({}); add it to \
                 `platforms` or remove its budget",
                listed.join(", ")
            ),
        ));
    }
    Ok(listed)
}
