//! A writer of Go bbolt's file format — the store of Trivy's vulnerability DB — for the scan
//! tests' fixture DB only: it writes a whole file at once from a tree of buckets, and nothing
//! else (no reading, updating or free space). The layout is Go bbolt 1.5's (Trivy 0.76's;
//! go.etcd.io/bbolt `db.go` `init`, `internal/common/{page,meta,bucket,inode}.go`), in the
//! machine's byte order as Go bbolt writes it (its structs are cast from the file's bytes):
//!
//! - The file is pages of `PAGE_SIZE` bytes, page `n` at `n × PAGE_SIZE`. Each starts with a
//!   16-byte header: id u64 (= `n`), flags u16 (0x01 branch, 0x02 leaf, 0x04 meta,
//!   0x10 freelist), count u16 (elements), overflow u32 (following pages that belong to it).
//! - Pages 0 and 1 are meta pages, after the header: magic u32 0xED0CDAED, version u32 2,
//!   page size u32, flags u32 0, the root bucket (root page id u64, sequence u64), freelist
//!   page id u64, high-water mark u64 (the number of pages), txid u64 (= the page's id; a reader
//!   takes the valid meta with the higher one), checksum u64: FNV-1a 64 of the 56 bytes before.
//! - Page 2 is the freelist: count 0, as every other page is in use.
//! - A leaf page holds `count` elements of 16 bytes — flags u32 (0x01: the value is a bucket),
//!   pos u32 (from the element's first byte to its key), ksize u32, vsize u32 — then each key
//!   followed by its value. Keys are unique and sorted bytewise.
//! - A bucket, as a value, is a 16-byte header (root page id u64, sequence u64 0). Root 0 means
//!   inline: the bucket's leaf page (id 0) follows the header inside the value. As in bbolt, a
//!   bucket is inline when it has no sub-buckets and its leaf takes at most `PAGE_SIZE / 4`
//!   bytes; any other gets a page of its own, written before its parent's. The root bucket
//!   always has a page.
//! - A leaf larger than a page runs on into `overflow` following pages, as bbolt does for one
//!   big value. (bbolt splits many keys under branch pages instead; it reads either alike, so
//!   this writer writes no branch pages.)

use std::collections::BTreeMap;

pub const PAGE_SIZE: usize = 4096;
/// A page header, a leaf element and a bucket header are 16 bytes each.
const HEADER: usize = 16;
const MAGIC: u32 = 0xED0C_DAED;
const VERSION: u32 = 2;
const LEAF: u16 = 0x02;
const META: u16 = 0x04;
const FREELIST: u16 = 0x10;
/// Leaf element flag: the value is a bucket.
const BUCKET_LEAF: u32 = 0x01;
const FREELIST_PAGE: u64 = 2;

/// A bucket: keys (sorted bytewise, as bbolt keeps them) to values or sub-buckets.
#[derive(Debug, Default, PartialEq)]
pub struct Bucket {
    entries: BTreeMap<Vec<u8>, Entry>,
}

#[derive(Debug, PartialEq)]
enum Entry {
    Value(Vec<u8>),
    Bucket(Bucket),
}

impl Bucket {
    /// The sub-bucket `name`, created if there is none.
    pub fn bucket(&mut self, name: &str) -> &mut Bucket {
        let entry = self.entries.entry(name.as_bytes().to_vec());
        match entry.or_insert_with(|| Entry::Bucket(Bucket::default())) {
            Entry::Bucket(bucket) => bucket,
            Entry::Value(_) => panic!("{name:?} is a value, not a bucket"),
        }
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: &str, value: impl Into<Vec<u8>>) -> &mut Bucket {
        assert!(!key.is_empty(), "bbolt keys are not empty");
        let old = self.entries.insert(key.into(), Entry::Value(value.into()));
        assert!(
            !matches!(old, Some(Entry::Bucket(_))),
            "{key:?} is a bucket"
        );
        self
    }

    /// This bucket's leaf page (id and overflow 0: `place` sets them), after writing the pages
    /// of its sub-buckets that are not inline to `file`.
    fn leaf(&self, file: &mut Vec<u8>) -> Vec<u8> {
        let count = u16::try_from(self.entries.len()).expect("at most 65535 keys in a bucket");
        let mut page = header(0, LEAF, count, 0);
        let mut data = Vec::new();
        for (i, (key, entry)) in self.entries.iter().enumerate() {
            let (flags, value) = match entry {
                Entry::Value(value) => (0, value.clone()),
                Entry::Bucket(bucket) => (BUCKET_LEAF, bucket.value(file)),
            };
            // From this element to its key: the elements from this one on, then the data so far.
            let pos = (usize::from(count) - i) * HEADER + data.len();
            for field in [flags, to_u32(pos), to_u32(key.len()), to_u32(value.len())] {
                page.extend(field.to_ne_bytes());
            }
            data.extend_from_slice(key);
            data.extend(value);
        }
        page.extend(data);
        page
    }

    /// The value under which the parent keeps this bucket: inline, or pointing at its own page.
    fn value(&self, file: &mut Vec<u8>) -> Vec<u8> {
        let leaf = self.leaf(file);
        let has_buckets = self.entries.values().any(|e| matches!(e, Entry::Bucket(_)));
        let (root, inline) = if has_buckets || leaf.len() > PAGE_SIZE / 4 {
            (place(file, leaf), Vec::new())
        } else {
            (0, leaf)
        };
        let mut value = bucket_header(root);
        value.extend(inline);
        value
    }
}

/// The bytes of a bbolt file whose root bucket is `root` (its entries are the top-level buckets).
pub fn file(root: &Bucket) -> Vec<u8> {
    // Pages 0-2 (the metas and the freelist) are filled in once the rest is written.
    let mut file = vec![0; 3 * PAGE_SIZE];
    let leaf = root.leaf(&mut file);
    let root_page = place(&mut file, leaf);
    let high_water = (file.len() / PAGE_SIZE) as u64;
    let freelist = header(FREELIST_PAGE, FREELIST, 0, 0);
    file[2 * PAGE_SIZE..][..HEADER].copy_from_slice(&freelist);
    for txid in 0..2u64 {
        let mut page = header(txid, META, 0, 0);
        for field in [MAGIC, VERSION, PAGE_SIZE as u32, 0] {
            page.extend(field.to_ne_bytes());
        }
        let root_bucket = bucket_header(root_page);
        page.extend(root_bucket);
        for field in [FREELIST_PAGE, high_water, txid] {
            page.extend(field.to_ne_bytes());
        }
        let checksum = fnv1a_64(&page[HEADER..]);
        page.extend(checksum.to_ne_bytes());
        let at = txid as usize * PAGE_SIZE;
        file[at..][..page.len()].copy_from_slice(&page);
    }
    file
}

/// Appends `page` to `file` as the next page (and as many overflow pages as it needs); its id.
fn place(file: &mut Vec<u8>, mut page: Vec<u8>) -> u64 {
    let id = (file.len() / PAGE_SIZE) as u64;
    let pages = page.len().div_ceil(PAGE_SIZE);
    page[..8].copy_from_slice(&id.to_ne_bytes());
    page[12..16].copy_from_slice(&to_u32(pages - 1).to_ne_bytes());
    page.resize(pages * PAGE_SIZE, 0);
    file.extend(page);
    id
}

fn header(id: u64, flags: u16, count: u16, overflow: u32) -> Vec<u8> {
    let mut header = Vec::with_capacity(PAGE_SIZE);
    header.extend(id.to_ne_bytes());
    header.extend(flags.to_ne_bytes());
    header.extend(count.to_ne_bytes());
    header.extend(overflow.to_ne_bytes());
    header
}

/// A bucket header: the root page (0: inline), sequence 0.
fn bucket_header(root: u64) -> Vec<u8> {
    [root.to_ne_bytes(), 0u64.to_ne_bytes()].concat()
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).expect("bbolt sizes fit 32 bits")
}

/// FNV-1a 64 (Go's `hash/fnv.New64a`): the meta page checksum.
fn fnv1a_64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Files read back as Go bbolt reads them, asserting what it relies on and what `bbolt check`
/// checks: valid metas, page ids, every page used once or free, sorted keys, inline buckets
/// only where bbolt inlines them. No Docker needed.
pub mod check {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_ne_bytes(b[at..at + 2].try_into().unwrap())
    }
    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
    }
    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_ne_bytes(b[at..at + 8].try_into().unwrap())
    }

    /// The root bucket of `file`.
    pub fn read(file: &[u8]) -> Bucket {
        assert_eq!(file.len() % PAGE_SIZE, 0, "whole pages");
        let pages = file.len() / PAGE_SIZE;
        let mut seen = vec![false; pages];
        let mut roots = Vec::new();
        for id in 0..2 {
            let page = &file[id * PAGE_SIZE..][..PAGE_SIZE];
            assert_eq!(
                (u64_at(page, 0), u16_at(page, 8)),
                (id as u64, META),
                "meta {id}"
            );
            let meta = &page[HEADER..];
            assert_eq!(u32_at(meta, 0), MAGIC, "meta {id} magic");
            assert_eq!(u32_at(meta, 4), VERSION, "meta {id} version");
            assert_eq!(u32_at(meta, 8) as usize, PAGE_SIZE, "meta {id} page size");
            assert_eq!(u32_at(meta, 12), 0, "meta {id} flags");
            assert_eq!(u64_at(meta, 24), 0, "meta {id} root sequence");
            assert_eq!(u64_at(meta, 32), FREELIST_PAGE, "meta {id} freelist");
            assert_eq!(
                u64_at(meta, 40) as usize,
                pages,
                "meta {id} high-water mark"
            );
            assert_eq!(u64_at(meta, 48), id as u64, "meta {id} txid");
            assert_eq!(
                u64_at(meta, 56),
                fnv1a_64(&meta[..56]),
                "meta {id} checksum"
            );
            roots.push(u64_at(meta, 16));
            seen[id] = true;
        }
        assert_eq!(roots[0], roots[1], "both metas name one root");
        let freelist = &file[2 * PAGE_SIZE..][..HEADER];
        assert_eq!(
            freelist,
            header(FREELIST_PAGE, FREELIST, 0, 0),
            "empty freelist"
        );
        seen[2] = true;
        let root = read_page(file, roots[0], &mut seen);
        let unused: Vec<usize> = (0..pages).filter(|&n| !seen[n]).collect();
        assert!(unused.is_empty(), "pages neither used nor free: {unused:?}");
        root
    }

    /// The bucket whose root page is `id`.
    fn read_page(file: &[u8], id: u64, seen: &mut [bool]) -> Bucket {
        let at = id as usize * PAGE_SIZE;
        assert!(
            id > FREELIST_PAGE && at < file.len(),
            "page {id} out of range"
        );
        assert_eq!(u64_at(file, at), id, "page {id}'s id");
        let overflow = u32_at(file, at + 12) as usize;
        for (n, seen) in seen
            .iter_mut()
            .enumerate()
            .skip(id as usize)
            .take(overflow + 1)
        {
            assert!(!*seen, "page {n} used twice");
            *seen = true;
        }
        read_leaf(&file[at..][..(overflow + 1) * PAGE_SIZE], file, seen)
    }

    /// The bucket whose leaf is `page` (a page of the file, or inline in a value).
    fn read_leaf(page: &[u8], file: &[u8], seen: &mut [bool]) -> Bucket {
        assert_eq!(u16_at(page, 8), LEAF, "a leaf page");
        let mut bucket = Bucket::default();
        for i in 0..usize::from(u16_at(page, 10)) {
            let element = HEADER + i * HEADER;
            let [flags, pos, ksize, vsize] = [0, 4, 8, 12].map(|o| u32_at(page, element + o));
            let key = &page[element + pos as usize..][..ksize as usize];
            let value = &page[element + (pos + ksize) as usize..][..vsize as usize];
            assert!(!key.is_empty(), "empty key");
            if let Some(last) = bucket.entries.keys().next_back() {
                assert!(
                    last.as_slice() < key,
                    "keys out of order: {last:?}, {key:?}"
                );
            }
            let entry = match flags {
                0 => Entry::Value(value.to_vec()),
                BUCKET_LEAF => {
                    assert_eq!(u64_at(value, 8), 0, "bucket sequence");
                    Entry::Bucket(match u64_at(value, 0) {
                        0 => {
                            let inline = &value[HEADER..];
                            assert_eq!(u64_at(inline, 0), 0, "inline page id");
                            assert_eq!(u32_at(inline, 12), 0, "inline page overflow");
                            assert!(inline.len() <= PAGE_SIZE / 4, "inline bucket too big");
                            let child = read_leaf(inline, file, seen);
                            let nested = child
                                .entries
                                .values()
                                .any(|e| matches!(e, Entry::Bucket(_)));
                            assert!(!nested, "inline bucket with sub-buckets");
                            child
                        }
                        root => read_page(file, root, seen),
                    })
                }
                other => panic!("leaf element flags {other:#x}"),
            };
            bucket.entries.insert(key.to_vec(), entry);
        }
        bucket
    }

    /// The pages a file of `root` takes, after checking that it reads back as `root`.
    pub fn pages(root: &Bucket) -> usize {
        let file = file(root);
        assert_eq!(&read(&file), root, "read back");
        file.len() / PAGE_SIZE
    }

    #[test]
    fn checksum_is_go_fnv1a_64() {
        // The FNV reference test vectors.
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn an_empty_db_is_what_go_bbolt_creates() {
        // Go's `DB.init`: two metas, the freelist, an empty root leaf; high-water mark 4.
        let file = file(&Bucket::default());
        assert_eq!(file.len(), 4 * PAGE_SIZE);
        assert_eq!(&file[3 * PAGE_SIZE..][..HEADER], header(3, LEAF, 0, 0));
        assert_eq!(read(&file), Bucket::default());
    }

    #[test]
    fn buckets_are_inline_up_to_a_quarter_page_without_sub_buckets() {
        // A leaf of one element with a 1-byte key: 16 + 16 + 1 + value bytes.
        let with_value = |size: usize| {
            let mut root = Bucket::default();
            root.bucket("b").put("k", vec![b'x'; size]);
            root
        };
        assert_eq!(pages(&with_value(PAGE_SIZE / 4 - 33)), 4, "inline");
        assert_eq!(
            pages(&with_value(PAGE_SIZE / 4 - 32)),
            5,
            "a page of its own"
        );
        let mut nested = Bucket::default();
        nested.bucket("outer").bucket("inner").put("k", "v");
        assert_eq!(pages(&nested), 5, "outer has a page, inner is inline in it");
    }

    #[test]
    fn big_buckets_and_values_take_overflow_pages() {
        let mut root = Bucket::default();
        let many = root.bucket("many");
        for i in 0..40 {
            // 40 elements of 16 + 6 + 100 bytes and a header: 4,896 bytes, two pages.
            many.put(&format!("key-{i:02}"), vec![b'v'; 100]);
        }
        // 16 + 16 + 3 + 10,000 bytes: three pages.
        root.bucket("big").put("big", vec![b'b'; 10_000]);
        root.bucket("small").put("k", "v");
        assert_eq!(pages(&root), 3 + 2 + 3 + 1);
    }
}
