//! The test pattern: [`fill`] writes element `seq`, [`verify`] checks one (see the
//! module documentation of [`traffic`](super)).

use super::*;

/// Bytes of the sequence number at the start of each element: the smallest element.
pub const SEQ_LEN: usize = 8;

/// The capacity `send` gives a queue it creates when `--capacity` is not given.
pub const DEFAULT_CAPACITY: usize = 1024;

/// Refuses element sizes the pattern does not fit in.
pub fn check_element_size(elem_size: usize) -> Result<(), CliError> {
    if elem_size < SEQ_LEN {
        return Err(CliError::ElementTooSmall(elem_size));
    }
    Ok(())
}

/// Writes element `seq` of the pattern into `out` (`out.len() >= 8`).
///
/// ```
/// let mut e = [0u8; 12];
/// fastipc_cli::traffic::fill(300, &mut e);
/// assert_eq!(&e[..8], &300u64.to_le_bytes());
/// assert_eq!(e[8], ((300 * 7 + 8) % 256) as u8);
/// assert_eq!(fastipc_cli::traffic::verify(&e), Ok(300));
/// ```
pub fn fill(seq: u64, out: &mut [u8]) {
    let (head, rest) = out.split_at_mut(SEQ_LEN);
    head.copy_from_slice(&seq.to_le_bytes());
    let base = seq.wrapping_mul(7);
    for (j, b) in rest.iter_mut().enumerate() {
        *b = pattern_byte(base, j + SEQ_LEN);
    }
}

/// Byte `j` of the element whose `seq × 7` is `base` (2^64 is a multiple of 256, so
/// wrapping arithmetic gives the true `mod 256`).
pub(super) fn pattern_byte(base: u64, j: usize) -> u8 {
    base.wrapping_add(j as u64) as u8
}

/// What is wrong with an element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corruption {
    /// Shorter than the sequence number.
    TooShort {
        /// Its length.
        len: usize,
    },
    /// A payload byte differs from the pattern of the element's sequence number.
    Byte {
        /// The sequence number the element carries.
        seq: u64,
        /// The first offending byte.
        offset: usize,
        /// Its value.
        found: u8,
        /// The pattern's value.
        expected: u8,
    },
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::TooShort { len } => write!(f, "an element of {len} bytes"),
            Corruption::Byte {
                seq,
                offset,
                found,
                expected,
            } => write!(
                f,
                "element {seq}: byte {offset} is {found}, the pattern says {expected}"
            ),
        }
    }
}

/// Checks an element against the pattern; its sequence number when intact.
pub fn verify(elem: &[u8]) -> Result<u64, Corruption> {
    let Some(head) = elem.get(..SEQ_LEN) else {
        return Err(Corruption::TooShort { len: elem.len() });
    };
    let seq = u64::from_le_bytes(head.try_into().unwrap_or([0; 8]));
    let base = seq.wrapping_mul(7);
    for (j, &found) in elem.iter().enumerate().skip(SEQ_LEN) {
        let expected = pattern_byte(base, j);
        if found != expected {
            return Err(Corruption::Byte {
                seq,
                offset: j,
                found,
                expected,
            });
        }
    }
    Ok(seq)
}
