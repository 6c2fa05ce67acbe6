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

/// Where the layers are read from (`--source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// containerd's content store when this user can read it, else `docker save`.
    Auto,
    /// containerd's content store on this machine (needs the containerd image store and read
    /// access to the engine's data directory, usually root).
    ContentStore,
    /// `docker save`, streamed: works with any engine and user, slower.
    DockerSave,
}

/// How to measure.
pub struct Options<'a> {
    pub source: Source,
    /// Decompress every gzip layer instead of reading lengths from gzip trailers.
    pub decompress: bool,
    pub info: &'a docker::Info,
}

/// Facts for each wanted image ID: from the cache, else from one `docker save` of the rest.
pub fn measure(
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
    if todo.is_empty() {
        return Ok((facts, stats));
    }

    let layout = match (store, options.source) {
        (Store::Classic, _) | (Store::Containerd, Source::DockerSave) => None,
        (Store::Containerd, source) => {
            let ids: Vec<&str> = todo.iter().map(|w| w.inspect.id.as_str()).collect();
            match ContentStore::locate(&options.info.docker_root_dir, &ids) {
                Ok(found) => Some(found),
                Err(why) if source == Source::ContentStore => bail!(
                    "--source content-store: {why}. Run as root on the engine's machine, or use \
                     --source docker-save"
                ),
                Err(why) => {
                    crate::util::progress!(
                        "{why}; reading the layers with `docker save` instead, which is slower"
                    );
                    None
                }
            }
        }
    };
    let layout = match layout {
        Some(found) => {
            crate::util::progress!(
                "reading {} from containerd's content store ({})",
                todo.iter()
                    .map(|w| match w.platform {
                        Some(p) => format!("{} ({p})", w.reference),
                        None => w.reference.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                found.dir()
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
