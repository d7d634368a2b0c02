//! The bytes of one Zenoh message: a batch header, the type name, then the messages.
//!
//! docs/BRIDGE.md describes the format for non-fastipc clients; this module is its one
//! implementation. Every integer is little-endian.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `b"FQZB"` |
//! | 4 | 1 | version (1) |
//! | 5 | 1 | flags (bit 0: the exporter is lossless) |
//! | 6 | 2 | `name_len`: bytes of the type name |
//! | 8 | 4 | `element_size`: bytes per message |
//! | 12 | 4 | `count`: messages in this batch (may be 0: losses only) |
//! | 16 | 8 | `fingerprint` (0: unknown) |
//! | 24 | 8 | `source`: identity of the source queue (stable across exporter restarts) |
//! | 32 | 8 | `stream`: identity of this exporter run (random) |
//! | 40 | 8 | `seq`: messages this stream published before this batch |
//! | 48 | 8 | `first_index`: source-queue index of the first message (`u64::MAX`: none) |
//! | 56 | 8 | `lagged`: messages the exporter missed (overwritten) since its last batch |
//! | 64 | 8 | `abandoned`: messages abandoned by dead producers since its last batch |
//! | 72 | 8 | `corrupt`: corrupt slots the exporter skipped since its last batch |
//! | 80 | `name_len` | type name, UTF-8 |
//! | 80 + `name_len` | `count * element_size` | the messages, back to back |

/// The first four bytes of every batch.
pub const MAGIC: [u8; 4] = *b"FQZB";
/// The format version this crate writes and reads.
pub const VERSION: u8 = 1;
/// Bytes of the fixed part of the header.
pub const FIXED_LEN: usize = 80;
/// Flag: the exporter runs in lossless mode.
pub const FLAG_LOSSLESS: u8 = 1;
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
    #[error("batch format version {0} is not supported (this bridge reads {VERSION})")]
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
        if bytes.len() < FIXED_LEN {
            return Err(truncated(FIXED_LEN));
        }
        let magic: [u8; 4] = bytes[0..4].try_into().expect("4 bytes");
        if magic != MAGIC {
            return Err(WireError::BadMagic(magic));
        }
        if bytes[4] != VERSION {
            return Err(WireError::Version(bytes[4]));
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
        let needed = (FIXED_LEN + name_len) as u64 + data_len;
        if (bytes.len() as u64) < needed {
            return Err(truncated(needed.min(usize::MAX as u64) as usize));
        }
        if bytes.len() as u64 > needed {
            return Err(WireError::Malformed("bytes after the last message"));
        }
        let type_name = core::str::from_utf8(&bytes[FIXED_LEN..FIXED_LEN + name_len])
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
            type_name,
        };
        Ok((header, &bytes[FIXED_LEN + name_len..]))
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
        assert_eq!(buf[4], 1);
        assert_eq!(buf[5], 1);
        assert_eq!(u16::from_le_bytes([buf[6], buf[7]]), 4);
        assert_eq!(u32::from_le_bytes(buf[8..12].try_into().unwrap()), 4);
        assert_eq!(u32::from_le_bytes(buf[12..16].try_into().unwrap()), 2);
        for (i, want) in [0x1122_3344_5566_7788u64, 9, 10, 11, 12, 13, 14, 15]
            .iter()
            .enumerate()
        {
            let o = 16 + 8 * i;
            assert_eq!(u64::from_le_bytes(buf[o..o + 8].try_into().unwrap()), *want);
        }
        assert_eq!(&buf[80..84], b"Tick");
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
