//! The measuring stage of `sizes`: facts for each wanted image ID from the cache, else read
//! from containerd's content store on this machine (`content.rs`: the fast path) or from one
//! `docker save` of every image not yet measured (`save.rs`), then cached.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;

use super::cache::Cache;
use super::content::{self, ContentStore};
use super::facts::{ImageFacts, Stats, Store, Wanted};
use super::save;
use crate::docker;
use crate::util::progress;

/// Where the layers are read from (`--source`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// containerd's content store when this user can read it, else `docker save`.
    #[default]
    Auto,
    /// containerd's content store on this machine (needs the containerd image store and read
    /// access to the engine's data directory, usually root).
    ContentStore,
    /// `docker save`, streamed: works with any engine and user, slower.
    DockerSave,
}

/// How to measure.
pub(crate) struct Options<'a> {
    pub(crate) source: Source,
    /// Decompress every gzip layer instead of reading lengths from gzip trailers.
    pub(crate) decompress: bool,
    pub(crate) info: &'a docker::Info,
}

/// Facts for each wanted image ID: from the cache, else read from the content store or one
/// `docker save` of the rest, then cached.
pub(crate) fn measure(
    store: Store,
    wanted: &[Wanted],
    cache: &Cache,
    options: &Options,
    warn: &mut dyn FnMut(String),
) -> Result<(BTreeMap<String, ImageFacts>, Stats)> {
    if store == Store::Classic && options.source == Source::ContentStore {
        bail!(
            "--source content-store needs the containerd image store, but this engine uses the \
             classic store, whose layers only `docker save` reads: drop --source"
        );
    }
    let mut stats = Stats::default();
    let (mut facts, todo) = from_cache(store, wanted, cache, &mut stats);
    if todo.is_empty() {
        return Ok((facts, stats));
    }
    let layout = match content_store(store, &todo, options)? {
        Some(found) => {
            progress!(
                "reading {} from containerd's content store ({})",
                names(&todo),
                crate::util::shown(found.dir())
            );
            stats.from_store = todo.len();
            content::read_layout(&found, &todo, cache, options.decompress, &mut stats)?
        }
        None => save::read_layout(store, &todo, cache, &mut stats)?,
    };
    for w in todo {
        let f = layout
            .image_facts(store, w.inspect)
            .with_context(|| format!("measuring {} ({})", w.reference, w.inspect.id))?;
        if let Err(e) = cache.put_image(&f) {
            warn(format!("cannot cache the sizes of {}: {e:#}", w.reference));
        }
        facts.insert(w.inspect.id.clone(), f);
    }
    for (digest, blob) in &layout.new_blobs {
        if let Err(e) = cache.put_blob(digest, blob) {
            warn(format!("cannot cache the facts of blob {digest}: {e:#}"));
            break;
        }
    }
    Ok((facts, stats))
}

/// The facts the cache holds, and the images (one per ID) still to measure.
fn from_cache<'w>(
    store: Store,
    wanted: &'w [Wanted<'w>],
    cache: &Cache,
    stats: &mut Stats,
) -> (BTreeMap<String, ImageFacts>, Vec<&'w Wanted<'w>>) {
    let mut facts = BTreeMap::new();
    let mut todo: Vec<&Wanted> = Vec::new();
    for w in wanted {
        let id = &w.inspect.id;
        if facts.contains_key(id) || todo.iter().any(|t| &t.inspect.id == id) {
            continue;
        }
        match cache.image(store, id) {
            Some(f) => {
                stats.from_cache += 1;
                facts.insert(id.clone(), f);
            }
            None => todo.push(w),
        }
    }
    (facts, todo)
}

/// The content store to read `todo` from, or None for `docker save` (the classic store, asked
/// for, or the content store not readable here).
fn content_store(
    store: Store,
    todo: &[&Wanted],
    options: &Options,
) -> Result<Option<ContentStore>> {
    if store == Store::Classic || options.source == Source::DockerSave {
        return Ok(None);
    }
    let ids: Vec<&str> = todo.iter().map(|w| w.inspect.id.as_str()).collect();
    match ContentStore::locate(&options.info.docker_root_dir, &ids) {
        Ok(found) => Ok(Some(found)),
        Err(why) if options.source == Source::ContentStore => bail!(
            "--source content-store: {why}. Run as root on the engine's machine, or use \
             --source docker-save"
        ),
        Err(why) => {
            progress!("{why}; reading the layers with `docker save` instead, which is slower");
            Ok(None)
        }
    }
}

/// `voxserve:cpu (linux/arm64), voxserve:cuda` for the progress line.
fn names(todo: &[&Wanted]) -> String {
    let name = |w: &&Wanted| match w.platform {
        Some(p) => format!("{} ({p})", w.reference),
        None => w.reference.to_string(),
    };
    todo.iter().map(name).collect::<Vec<_>>().join(", ")
}
