//! Config snapshots: a validated config compiled into its run-time form and serialised with
//! rkyv, so that `ringsipctl push` builds it (the slow part: reading CSV files, sorting a
//! million prefixes) on the operator's side and the daemon only checks and loads it.
//!
//! Layout: a 64-byte header, then the rkyv archive of [`Content`]:
//!
//! ```text
//! 0..8    magic "RSNAPv1\0"
//! 8..12   format (u32 LE, currently 4; see [`FORMAT`])
//! 12..16  reserved (0)
//! 16..24  version (u64 LE): the daemon accepts only versions above the one it runs
//! 24..32  built at (u64 LE, milliseconds since the Unix epoch)
//! 32..48  content hash (xxh3-128 of the archive, LE): same config, same hash
//! 48..56  archive length (u64 LE)
//! 56..64  reserved (0)
//! 64..    the archive
//! ```
//!
//! Opening checks, in order: the header, the length, the hash, the archive itself (rkyv's
//! bytecheck: every offset and length in bounds, every enum tag valid, every string UTF-8),
//! then what bytecheck cannot know: each prefix tree's shape ([`Mtree::from_archived`]) and
//! that the routes refer to sets, trees and routes that exist (when the program compiles).
//! A snapshot that fails any check is refused whole; nothing of it is used.
//!
//! Measured choice (docs/config.md, "Snapshots"): lookups run on structures built once at
//! load, not on the archive. Copying a tree's node array out of the archive costs a few
//! milliseconds per million prefixes, keeps the lookup code one function for both paths,
//! and frees the received bytes right after the swap.

use std::fmt;

use ringsip_config::{Config, MtreeTable, MtreeValue};

use crate::mtree::{ArchivedTreeImage, BuildError, Mtree, TreeImage};
use crate::route::build_tree;

/// The first bytes of every snapshot.
pub const MAGIC: &[u8; 8] = b"RSNAPv1\0";
/// The layout version this build writes and reads. Raise it whenever the archived config
/// model changes shape (2: htables and acl groups; 3: `[transactions]` and the stateful route
/// actions and conditions; 4: `[media]` and the `anchor_media` action; 5: `[pike]` and the
/// `flooding` condition), so that a snapshot from another build is refused as "format N"
/// rather than as an invalid archive.
pub const FORMAT: u32 = 5;
/// Header length.
pub const HEADER: usize = 64;
/// Largest archive accepted (a snapshot with ten million prefixes is about 200 MB).
pub const MAX_ARCHIVE: u64 = 1 << 30;

/// What a snapshot carries: the validated config (with each tree's entries left out) and
/// every tree, built.
#[derive(Debug, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Content {
    /// The config; `mtrees[i].entries` is empty (the trees travel built, in `trees`).
    pub config: Config,
    /// The trees, in the order of `config.mtrees`.
    pub trees: Vec<CompiledTree>,
}

/// One built `[[mtree]]`.
#[derive(Debug, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct CompiledTree {
    /// The node arrays.
    pub image: TreeImage,
    /// The distinct values the tree's entries point at.
    pub distinct: Vec<MtreeValue>,
}

/// A snapshot's header fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Version number.
    pub version: u64,
    /// When it was built (ms since the Unix epoch).
    pub built_unix_ms: u64,
    /// xxh3-128 of the archive.
    pub hash: u128,
    /// Archive length in bytes.
    pub archive_len: u64,
}

impl Meta {
    /// The hash as 32 hex digits.
    pub fn hash_hex(&self) -> String {
        format!("{:032x}", self.hash)
    }
}

/// Why a snapshot was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    /// Fewer bytes than a header.
    TooShort(usize),
    /// Not a snapshot (the magic is wrong).
    NotASnapshot,
    /// Written by a build with another layout.
    Format(u32),
    /// The archive length in the header does not match the bytes received.
    Length {
        /// In the header.
        header: u64,
        /// Received.
        received: u64,
    },
    /// The content hash does not match: the bytes were damaged.
    Hash {
        /// In the header.
        header: u128,
        /// Computed.
        computed: u128,
    },
    /// rkyv's check of the archive failed.
    Archive(String),
    /// A tree is malformed.
    Tree {
        /// Its name.
        name: String,
        /// What is wrong.
        error: BuildError,
    },
    /// The config inside does not hold together (e.g. a route names a set that is missing).
    Invalid(String),
    /// Building a snapshot failed.
    Build(String),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::TooShort(n) => write!(f, "not a snapshot: {n} bytes, shorter than the {HEADER}-byte header"),
            SnapshotError::NotASnapshot => write!(f, "not a snapshot (wrong magic bytes)"),
            SnapshotError::Format(v) => {
                write!(f, "snapshot format {v}, but this ringsip reads format {FORMAT}: build it with the same release")
            }
            SnapshotError::Length { header, received } => {
                write!(f, "truncated or padded snapshot: header says {header} archive bytes, {received} arrived")
            }
            SnapshotError::Hash { header, computed } => {
                write!(f, "snapshot damaged: content hash {computed:032x} does not match the header's {header:032x}")
            }
            SnapshotError::Archive(e) => write!(f, "snapshot archive is invalid: {e}"),
            SnapshotError::Tree { name, error } => write!(f, "snapshot mtree {name}: {error}"),
            SnapshotError::Invalid(e) => write!(f, "snapshot config is inconsistent: {e}"),
            SnapshotError::Build(e) => write!(f, "cannot build the snapshot: {e}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

/// Compile a validated config into snapshot bytes. The slow part is building the trees.
pub fn build(cfg: &Config, version: u64, built_unix_ms: u64) -> Result<Vec<u8>, SnapshotError> {
    let mut trees = Vec::with_capacity(cfg.mtrees.len());
    for t in &cfg.mtrees {
        let (tree, distinct) = build_tree(t).map_err(SnapshotError::Build)?;
        trees.push(CompiledTree { image: tree.image(), distinct });
    }
    let config = Config {
        server: cfg.server.clone(),
        dispatcher: cfg.dispatcher.clone(),
        routes: cfg.routes.clone(),
        mtrees: cfg
            .mtrees
            .iter()
            .map(|t| MtreeTable {
                name: t.name.clone(),
                alphabet: t.alphabet.clone(),
                kind: t.kind,
                entries: Vec::new(),
            })
            .collect(),
        htables: cfg.htables.clone(),
        acls: cfg.acls.clone(),
        transactions: cfg.transactions.clone(),
        media: cfg.media.clone(),
        pike: cfg.pike.clone(),
        source: cfg.source.clone(),
    };
    let content = Content { config, trees };
    let archive = rkyv::to_bytes::<rkyv::rancor::Error>(&content).map_err(|e| SnapshotError::Build(e.to_string()))?;
    let hash = xxhash_rust::xxh3::xxh3_128(&archive);
    let mut out = Vec::with_capacity(HEADER + archive.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&built_unix_ms.to_le_bytes());
    out.extend_from_slice(&hash.to_le_bytes());
    out.extend_from_slice(&(archive.len() as u64).to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&archive);
    Ok(out)
}

/// Set a snapshot's version (the content hash covers the archive, not the header, so the
/// snapshot stays valid). Checks the header first.
pub fn restamp(bytes: &mut [u8], version: u64) -> Result<(), SnapshotError> {
    header(bytes)?;
    bytes[16..24].copy_from_slice(&version.to_le_bytes());
    Ok(())
}

/// Read and check the header (cheap: no hashing).
pub fn header(bytes: &[u8]) -> Result<Meta, SnapshotError> {
    if bytes.len() < HEADER {
        return Err(SnapshotError::TooShort(bytes.len()));
    }
    if &bytes[..8] != MAGIC {
        return Err(SnapshotError::NotASnapshot);
    }
    let u32_at = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let format = u32_at(8);
    if format != FORMAT {
        return Err(SnapshotError::Format(format));
    }
    let mut h = [0u8; 16];
    h.copy_from_slice(&bytes[32..48]);
    let meta =
        Meta { version: u64_at(16), built_unix_ms: u64_at(24), hash: u128::from_le_bytes(h), archive_len: u64_at(48) };
    let received = (bytes.len() - HEADER) as u64;
    if meta.archive_len != received || meta.archive_len > MAX_ARCHIVE {
        return Err(SnapshotError::Length { header: meta.archive_len, received });
    }
    Ok(meta)
}

/// A snapshot that passed every check: its config and its trees, ready to run.
#[derive(Debug)]
pub struct Opened {
    /// Header fields.
    pub meta: Meta,
    /// The config (tree entries empty).
    pub config: Config,
    /// The trees, in config order, with their distinct values.
    pub trees: Vec<(Mtree<u32>, Vec<MtreeValue>)>,
}

/// Check a snapshot and load it.
pub fn open(bytes: &[u8]) -> Result<Opened, SnapshotError> {
    let meta = header(bytes)?;
    let body = &bytes[HEADER..];
    let computed = xxhash_rust::xxh3::xxh3_128(body);
    if computed != meta.hash {
        return Err(SnapshotError::Hash { header: meta.hash, computed });
    }
    // rkyv needs the archive aligned; received bytes are not
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(body.len());
    aligned.extend_from_slice(body);
    let archived = rkyv::access::<ArchivedContent, rkyv::rancor::Error>(&aligned)
        .map_err(|e| SnapshotError::Archive(e.to_string()))?;
    let config: Config = rkyv::deserialize::<Config, rkyv::rancor::Error>(&archived.config)
        .map_err(|e| SnapshotError::Archive(e.to_string()))?;
    if archived.trees.len() != config.mtrees.len() {
        return Err(SnapshotError::Invalid(format!(
            "{} trees configured but {} built",
            config.mtrees.len(),
            archived.trees.len()
        )));
    }
    let mut trees = Vec::with_capacity(archived.trees.len());
    for (t, a) in config.mtrees.iter().zip(archived.trees.iter()) {
        let distinct: Vec<MtreeValue> = rkyv::deserialize::<Vec<MtreeValue>, rkyv::rancor::Error>(&a.distinct)
            .map_err(|e| SnapshotError::Archive(e.to_string()))?;
        let tree =
            load_tree(&a.image, distinct.len()).map_err(|error| SnapshotError::Tree { name: t.name.clone(), error })?;
        if tree.alphabet().chars() != t.alphabet.as_bytes() {
            return Err(SnapshotError::Invalid(format!("mtree {}: built with another alphabet", t.name)));
        }
        trees.push((tree, distinct));
    }
    Ok(Opened { meta, config, trees })
}

fn load_tree(image: &ArchivedTreeImage, distinct: usize) -> Result<Mtree<u32>, BuildError> {
    Mtree::from_archived(image, distinct)
}

/// Milliseconds since the Unix epoch (for `built_unix_ms`).
pub fn unix_ms_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests;
