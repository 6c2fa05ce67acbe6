//! Several layers as one: the tar an overlay of them shows, each path once. Two passes over the
//! layer tars: `index` reads every header (a directory's last one is what the overlay shows, and
//! the layers must only add: no whiteouts, no file in two layers), `write` then writes each
//! directory where it first appears, with its last header, and every other entry as it is.
//!
//! This is what the venv's layers were before they were split: one `COPY /opt/venv`, the same
//! files, so that `bench pull` compares layouts and nothing else.

use anyhow::{bail, Context, Result};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::path::{Component, PathBuf};
use tar::EntryType;

/// A directory's header as its last layer has it.
struct Dir {
    header: tar::Header,
    pax: Vec<(String, Vec<u8>)>,
}

/// What the first pass found.
#[derive(Default)]
pub struct Index {
    dirs: HashMap<PathBuf, Dir>,
    files: HashSet<PathBuf>,
}

/// `opt/venv/` and `./opt/venv` are one path.
fn key(path: &std::path::Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

/// PAX records other than the path and link name, which the writer sets itself.
fn pax_of<R: Read>(entry: &mut tar::Entry<R>) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(exts) = entry.pax_extensions().context("reading PAX records")? {
        for ext in exts {
            let ext = ext.context("reading a PAX record")?;
            let k = ext.key().context("a PAX key is not UTF-8")?;
            if k != "path" && k != "linkpath" {
                out.push((k.to_string(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

/// Reads every layer's headers, bottom layer first.
pub fn index(layers: impl IntoIterator<Item = Result<Box<dyn Read>>>) -> Result<Index> {
    let mut index = Index::default();
    each_entry(layers, |n, entry, path| {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.as_deref().is_some_and(|n| n.starts_with(".wh.")) {
            bail!(
                "layer {n} deletes {} (a whiteout): only layers that add files can be merged",
                path.display()
            );
        }
        let k = key(&path);
        match entry.header().entry_type() {
            EntryType::Directory => {
                if index.files.contains(&k) {
                    bail!(
                        "{} is a file in one layer and a directory in another",
                        path.display()
                    );
                }
                let pax = pax_of(entry)?;
                index.dirs.insert(
                    k,
                    Dir {
                        header: entry.header().clone(),
                        pax,
                    },
                );
            }
            EntryType::XGlobalHeader | EntryType::GNUSparse => bail!(
                "layer {n} has a {:?} entry ({}), which the merge does not write",
                entry.header().entry_type(),
                path.display()
            ),
            _ => {
                if index.dirs.contains_key(&k) || !index.files.insert(k) {
                    bail!(
                        "{} is in two of the layers merged: one layer would show only one",
                        path.display()
                    );
                }
            }
        }
        Ok(())
    })?;
    Ok(index)
}

/// Calls `f` with every entry of every layer, bottom first: the layer's number (1-based among
/// those merged), the entry and its path.
fn each_entry(
    layers: impl IntoIterator<Item = Result<Box<dyn Read>>>,
    mut f: impl FnMut(usize, &mut tar::Entry<'_, Box<dyn Read>>, PathBuf) -> Result<()>,
) -> Result<()> {
    for (i, layer) in layers.into_iter().enumerate() {
        let n = i + 1;
        let mut archive = tar::Archive::new(layer?);
        for entry in archive
            .entries()
            .with_context(|| format!("reading merged layer {n}"))?
        {
            let mut entry = entry.with_context(|| format!("reading merged layer {n}"))?;
            let path = entry.path().context("an entry's path")?.into_owned();
            f(n, &mut entry, path)?;
        }
    }
    Ok(())
}

/// Writes the merged tar to `out` (the same layers, in the same order, as `index` read) and
/// returns it.
pub fn write<W: Write>(
    index: &Index,
    layers: impl IntoIterator<Item = Result<Box<dyn Read>>>,
    out: W,
) -> Result<W> {
    let mut builder = tar::Builder::new(out);
    let mut written: HashSet<PathBuf> = HashSet::new();
    each_entry(layers, |_, entry, path| {
        let k = key(&path);
        let kind = entry.header().entry_type();
        if kind == EntryType::Directory {
            if !written.insert(k.clone()) {
                return Ok(());
            }
            let dir = index
                .dirs
                .get(&k)
                .with_context(|| format!("{} was not indexed", path.display()))?;
            let mut header = dir.header.clone();
            append_pax(&mut builder, &dir.pax)?;
            builder
                .append_data(&mut header, &path, std::io::empty())
                .with_context(|| format!("writing {}", path.display()))?;
            return Ok(());
        }
        if !index.files.contains(&k) {
            bail!("{} was not indexed", path.display());
        }
        let pax = pax_of(entry)?;
        append_pax(&mut builder, &pax)?;
        let mut header = entry.header().clone();
        if matches!(kind, EntryType::Link | EntryType::Symlink) {
            let target = entry
                .link_name()
                .context("a link's target")?
                .with_context(|| format!("the link {} has no target", path.display()))?
                .into_owned();
            builder
                .append_link(&mut header, &path, &target)
                .with_context(|| format!("writing {}", path.display()))?;
        } else {
            builder
                .append_data(&mut header, &path, entry)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    })?;
    builder.into_inner().context("finishing the merged tar")
}

fn append_pax<W: Write>(builder: &mut tar::Builder<W>, pax: &[(String, Vec<u8>)]) -> Result<()> {
    if !pax.is_empty() {
        builder
            .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .context("writing PAX records")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(b: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, mtime: u64) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(EntryType::Directory);
        h.set_mode(mode);
        h.set_mtime(mtime);
        h.set_size(0);
        b.append_data(&mut h, path, std::io::empty()).unwrap();
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, path, data).unwrap();
    }

    fn layer(f: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        f(&mut b);
        b.into_inner().unwrap()
    }

    fn readers(layers: &[Vec<u8>]) -> Vec<Result<Box<dyn Read>>> {
        layers
            .iter()
            .map(|l| Ok(Box::new(std::io::Cursor::new(l.clone())) as Box<dyn Read>))
            .collect()
    }

    /// (path, type, mode, mtime, data) of every entry.
    fn entries(tar: &[u8]) -> Vec<(String, char, u32, u64, Vec<u8>)> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = e.path().unwrap().to_string_lossy().into_owned();
                let h = e.header().clone();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (
                    path,
                    h.entry_type().as_byte() as char,
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                    data,
                )
            })
            .collect()
    }

    #[test]
    fn each_path_once_directories_as_the_top_layer_has_them() {
        let long = format!("opt/venv/lib/{}/mod.py", "d".repeat(120));
        let layers = vec![
            layer(|b| {
                dir(b, "opt/", 0o755, 1);
                dir(b, "opt/venv/", 0o755, 1);
                file(b, "opt/venv/a.so", b"torch");
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(EntryType::Symlink);
                h.set_mode(0o777);
                h.set_mtime(0);
                h.set_size(0);
                b.append_link(&mut h, "opt/venv/lib64", "lib").unwrap();
            }),
            layer(|b| {
                dir(b, "opt/", 0o755, 2);
                dir(b, "opt/venv/", 0o750, 2);
                file(b, &long, b"long name");
            }),
        ];
        let index = index(readers(&layers)).unwrap();
        let merged = write(&index, readers(&layers), Vec::new()).unwrap();
        let got = entries(&merged);
        let summary: Vec<(&str, char, u32, u64)> = got
            .iter()
            .map(|(p, t, m, mt, _)| (p.as_str(), *t, *m, *mt))
            .collect();
        assert_eq!(
            summary,
            [
                ("opt/", '5', 0o755, 2),
                ("opt/venv/", '5', 0o750, 2),
                ("opt/venv/a.so", '0', 0o644, 0),
                ("opt/venv/lib64", '2', 0o777, 0),
                (long.as_str(), '0', 0o644, 0),
            ]
        );
        assert_eq!(got[2].4, b"torch");
        assert_eq!(got[4].4, b"long name");
    }

    #[test]
    fn whiteouts_and_a_file_in_two_layers_are_refused() {
        let a = layer(|b| file(b, "opt/venv/x", b"1"));
        let wh = layer(|b| file(b, "opt/venv/.wh.x", b""));
        let err = index(readers(&[a.clone(), wh])).err().unwrap().to_string();
        assert!(err.contains("whiteout"), "{err}");
        let err = index(readers(&[a.clone(), a])).err().unwrap().to_string();
        assert!(err.contains("opt/venv/x is in two"), "{err}");
    }
}
