//! The bytes of one Zenoh message: a batch header, the type name, then the messages.
//!
//! docs/BRIDGE.md describes the format for non-fastipc clients; this module is its one
//! implementation. Every integer is little-endian.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `b"FQZB"` |
//! | 4 | 1 | version (2; version 1, without `unmatched`, is read too) |
//! | 5 | 1 | flags (bit 0: the exporter is lossless; bit 1: it wants acknowledgements) |
//! | 6 | 2 | `name_len`: bytes of the type name |
//! | 8 | 4 | `element_size`: bytes per message |
//! | 12 | 4 | `count`: messages in this batch (may be 0: losses only) |
//! | 16 | 8 | `fingerprint` (0: unknown) |
//! | 24 | 8 | `source`: identity of the source queue (stable across exporter restarts within a boot) |
//! | 32 | 8 | `stream`: identity of this exporter run (random) |
//! | 40 | 8 | `seq`: messages this stream published before this batch |
//! | 48 | 8 | `first_index`: source-queue index of the first message (`u64::MAX`: none) |
//! | 56 | 8 | `lagged`: messages the exporter missed (overwritten) since its last batch |
//! | 64 | 8 | `abandoned`: messages abandoned by dead producers since its last batch |
//! | 72 | 8 | `corrupt`: corrupt slots the exporter skipped since its last batch |
//! | 80 | 8 | `unmatched`: messages the exporter read but did not publish since its last batch, because no subscriber matched (version 2) |
//! | 88 | `name_len` | type name, UTF-8 (at 80 in version 1) |
//! | 88 + `name_len` | `count * element_size` | the messages, back to back |
//!
//! An acknowledgement (an importer to an exporter that set [`FLAG_ACK`], on the batch's
//! key followed by [`ACK_SUFFIX`]) is [`Ack`]: magic `b"FQZA"`, version 1, 3 bytes 0,
//! `source`, `stream`, `next_index` (32 bytes).

/// The first four bytes of every batch.
pub const MAGIC: [u8; 4] = *b"FQZB";
/// The format version this crate writes (it reads this one and [`VERSION_1`]).
pub const VERSION: u8 = 2;
/// The first version: no `unmatched` field (the type name at 80).
pub const VERSION_1: u8 = 1;
/// Bytes of the fixed part of the header.
pub const FIXED_LEN: usize = 88;
/// Bytes of the fixed part of a version 1 header.
pub const FIXED_LEN_1: usize = 80;
/// Flag: the exporter runs in lossless mode.
pub const FLAG_LOSSLESS: u8 = 1;
/// Flag: the exporter wants acknowledgements ([`Ack`]) of what importers wrote.
pub const FLAG_ACK: u8 = 2;
/// Appended to a batch's key to make the key its acknowledgements go to (a verbatim
/// chunk: wildcards of importers' key expressions do not match it).
pub const ACK_SUFFIX: &str = "/@fastipc-ack";
/// The first four bytes of an acknowledgement.
pub const ACK_MAGIC: [u8; 4] = *b"FQZA";
/// Bytes of an acknowledgement.
pub const ACK_LEN: usize = 32;
/// `first_index` of a batch without messages.
pub const NO_INDEX: u64 = u64::MAX;

/// The decoded header of a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchHeader {
    /// Flags ([`FLAG_LOSSLESS`]).
    pub flags: u8,
    /// Bytes per message.
    pub element_size: u32,
    /// Messages in the batch.
    pub count: u32,
    /// The message type's fingerprint (0: unknown).
    pub fingerprint: u64,
    /// Identity of the source queue.
    pub source: u64,
    /// Identity of the exporter run.
    pub stream: u64,
    /// Messages the stream published before this batch.
    pub seq: u64,
    /// Source-queue index of the first message ([`NO_INDEX`] when `count == 0`).
    pub first_index: u64,
    /// Upstream `Lagged` count since the previous batch.
    pub lagged: u64,
    /// Upstream abandoned-message count since the previous batch.
    pub abandoned: u64,
    /// Upstream corrupt slots skipped since the previous batch.
    pub corrupt: u64,
    /// Messages read but not published since the previous batch: no subscriber matched.
    pub unmatched: u64,
    /// The message type's name.
    pub type_name: String,
}

/// A payload that is not a batch of this format.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Shorter than its header says.
    #[error("batch of {len} bytes is truncated: {needed} needed")]
    Truncated {
        /// The payload's length.
        len: usize,
        /// The length the header implies.
        needed: usize,
    },
    /// Not a batch (wrong magic).
    #[error("not a fastipc bridge batch (magic {0:02x?})")]
    BadMagic([u8; 4]),
    /// A version this crate does not read.
    #[error("batch format version {0} is not supported (this bridge reads 1 and {VERSION})")]
    Version(u8),
    /// Bytes after the messages, an element size of 0, or a name that is not UTF-8.
    #[error("malformed batch: {0}")]
    Malformed(&'static str),
}

impl BatchHeader {
    /// Bytes of the header with its type name: where the messages start.
    pub fn len(&self) -> usize {
        FIXED_LEN + self.type_name.len()
    }

    /// Always false: a header has a fixed part.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the header into `out` (cleared first); the caller appends the messages.
    /// A name longer than 65535 bytes is cut at a character boundary.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut name = self.type_name.as_str();
        while name.len() > usize::from(u16::MAX) {
            let mut cut = usize::from(u16::MAX);
            while !name.is_char_boundary(cut) {
                cut -= 1;
            }
            name = &name[..cut];
        }
        out.clear();
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(self.flags);
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&self.element_size.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        for v in [
            self.fingerprint,
            self.source,
            self.stream,
            self.seq,
            self.first_index,
            self.lagged,
            self.abandoned,
            self.corrupt,
            self.unmatched,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(name.as_bytes());
    }

    /// Decodes a batch: its header and the message bytes (exactly `count *
    /// element_size`).
    pub fn decode(bytes: &[u8]) -> Result<(BatchHeader, &[u8]), WireError> {
        let truncated = |needed| WireError::Truncated {
            len: bytes.len(),
            needed,
        };
        if bytes.len() < FIXED_LEN_1 {
            return Err(truncated(FIXED_LEN_1));
        }
        let magic: [u8; 4] = bytes[0..4].try_into().expect("4 bytes");
        if magic != MAGIC {
            return Err(WireError::BadMagic(magic));
        }
        let fixed = match bytes[4] {
            VERSION => FIXED_LEN,
            VERSION_1 => FIXED_LEN_1,
            v => return Err(WireError::Version(v)),
        };
        if bytes.len() < fixed {
            return Err(truncated(fixed));
        }
        let u16_at = |o: usize| u16::from_le_bytes(bytes[o..o + 2].try_into().expect("2 bytes"));
        let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().expect("8 bytes"));
        let name_len = usize::from(u16_at(6));
        let element_size = u32_at(8);
        let count = u32_at(12);
        if element_size == 0 {
            return Err(WireError::Malformed("element size 0"));
        }
        let data_len = u64::from(count) * u64::from(element_size);
        let needed = (fixed + name_len) as u64 + data_len;
        if (bytes.len() as u64) < needed {
            return Err(truncated(needed.min(usize::MAX as u64) as usize));
        }
        if bytes.len() as u64 > needed {
            return Err(WireError::Malformed("bytes after the last message"));
        }
        let type_name = core::str::from_utf8(&bytes[fixed..fixed + name_len])
            .map_err(|_| WireError::Malformed("type name is not UTF-8"))?
            .to_owned();
        let header = BatchHeader {
            flags: bytes[5],
            element_size,
            count,
            fingerprint: u64_at(16),
            source: u64_at(24),
            stream: u64_at(32),
            seq: u64_at(40),
            first_index: u64_at(48),
            lagged: u64_at(56),
            abandoned: u64_at(64),
            corrupt: u64_at(72),
            unmatched: if fixed == FIXED_LEN { u64_at(80) } else { 0 },
            type_name,
        };
        Ok((header, &bytes[fixed + name_len..]))
    }
}

/// An importer's acknowledgement: every message of `source` before `next_index` was
/// written into its queue (sent for batches with [`FLAG_ACK`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The batch's `source`.
    pub source: u64,
    /// The batch's `stream`.
    pub stream: u64,
    /// The source-queue index after the last message written.
    pub next_index: u64,
}

impl Ack {
    /// The 32 bytes of the acknowledgement.
    pub fn encode(&self) -> [u8; ACK_LEN] {
        let mut out = [0; ACK_LEN];
        out[0..4].copy_from_slice(&ACK_MAGIC);
        out[4] = 1;
        out[8..16].copy_from_slice(&self.source.to_le_bytes());
        out[16..24].copy_from_slice(&self.stream.to_le_bytes());
        out[24..32].copy_from_slice(&self.next_index.to_le_bytes());
        out
    }

    /// Decodes an acknowledgement; `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<Ack> {
        if bytes.len() != ACK_LEN || bytes[0..4] != ACK_MAGIC || bytes[4] != 1 {
            return None;
        }
        let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap_or([0; 8]));
        Some(Ack {
            source: u64_at(8),
            stream: u64_at(16),
            next_index: u64_at(24),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BatchHeader {
        BatchHeader {
            flags: FLAG_LOSSLESS,
            element_size: 4,
            count: 2,
            fingerprint: 0x1122_3344_5566_7788,
            source: 9,
            stream: 10,
            seq: 11,
            first_index: 12,
            lagged: 13,
            abandoned: 14,
            corrupt: 15,
            unmatched: 16,
            type_name: "Tick".into(),
        }
    }

    #[test]
    fn round_trip() {
        let h = sample();
        let mut buf = Vec::new();
        h.encode_into(&mut buf);
        assert_eq!(buf.len(), h.len());
        buf.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let (back, data) = BatchHeader::decode(&buf).unwrap();
        assert_eq!(back, h);
        assert_eq!(data, &[1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn offsets_are_the_documented_ones() {
        let mut buf = Vec::new();
        sample().encode_into(&mut buf);
        assert_eq!(&buf[0..4], b"FQZB");
        assert_eq!(buf[4], 2);
        assert_eq!(buf[5], 1);
        assert_eq!(u16::from_le_bytes([buf[6], buf[7]]), 4);
        assert_eq!(u32::from_le_bytes(buf[8..12].try_into().unwrap()), 4);
        assert_eq!(u32::from_le_bytes(buf[12..16].try_into().unwrap()), 2);
        for (i, want) in [0x1122_3344_5566_7788u64, 9, 10, 11, 12, 13, 14, 15, 16]
            .iter()
            .enumerate()
        {
            let o = 16 + 8 * i;
            assert_eq!(u64::from_le_bytes(buf[o..o + 8].try_into().unwrap()), *want);
        }
        assert_eq!(&buf[88..92], b"Tick");
    }

    #[test]
    fn version_1_is_read_without_unmatched() {
        let mut v2 = Vec::new();
        sample().encode_into(&mut v2);
        // The version 1 layout: the same 80 bytes, then the name, no `unmatched`.
        let mut v1 = v2[..80].to_vec();
        v1[4] = 1;
        v1.extend_from_slice(b"Tick");
        v1.extend_from_slice(&[7; 8]);
        let (h, data) = BatchHeader::decode(&v1).unwrap();
        assert_eq!(
            h,
            BatchHeader {
                unmatched: 0,
                ..sample()
            }
        );
        assert_eq!(data, &[7; 8]);
    }

    #[test]
    fn acks_round_trip_and_refuse_other_bytes() {
        let ack = Ack {
            source: 1,
            stream: 2,
            next_index: 3,
        };
        let bytes = ack.encode();
        assert_eq!(&bytes[0..5], b"FQZA\x01");
        assert_eq!(u64::from_le_bytes(bytes[24..32].try_into().unwrap()), 3);
        assert_eq!(Ack::decode(&bytes), Some(ack));
        assert_eq!(Ack::decode(&bytes[..31]), None);
        let mut bad = bytes;
        bad[4] = 2;
        assert_eq!(Ack::decode(&bad), None);
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let mut buf = Vec::new();
        sample().encode_into(&mut buf);
        buf.extend_from_slice(&[0; 8]);
        assert!(matches!(
            BatchHeader::decode(&buf[..10]),
            Err(WireError::Truncated { .. })
        ));
        assert!(matches!(
            BatchHeader::decode(&buf[..buf.len() - 1]),
            Err(WireError::Truncated { .. })
        ));
        let mut long = buf.clone();
        long.push(0);
        assert_eq!(
            BatchHeader::decode(&long),
            Err(WireError::Malformed("bytes after the last message"))
        );
        let mut magic = buf.clone();
        magic[0] = b'X';
        assert!(matches!(
            BatchHeader::decode(&magic),
            Err(WireError::BadMagic(_))
        ));
        let mut version = buf.clone();
        version[4] = 9;
        assert_eq!(BatchHeader::decode(&version), Err(WireError::Version(9)));
        let mut zero = buf.clone();
        zero[8..12].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            BatchHeader::decode(&zero),
            Err(WireError::Malformed("element size 0"))
        );
        // A count whose byte length overflows 32 bits is just truncated, not a panic.
        let mut huge = buf;
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            BatchHeader::decode(&huge),
            Err(WireError::Truncated { .. })
        ));
    }
}
