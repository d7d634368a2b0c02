//! [`Inspection`]: what a segment's header says and how an attach would judge it, without
//! attaching or waiting (what `fastipc inspect` shows).

use std::time::Duration;

use super::Ring;
use super::attach::{Handshake, handshake, truncated, validate};
use crate::error::OpenError;
use crate::queue::Mode;
use crate::queue::endpoints::{EndpointInfo, Table};
use crate::queue::layout::{
    FLAG_ENDPOINTS, Geometry, HEADER_SIZE, Header, HeaderSnapshot, TypeTrailer,
};
use crate::sys::futex::Scope;
use crate::sys::shm::Segment;

/// What [`Ring::inspect`] found in a segment, without attaching to it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Inspection {
    /// The header, decoded field by field.
    pub header: HeaderSnapshot,
    /// The segment's size in bytes.
    pub file_size: u64,
    /// The type trailer, when the queue was made by fastipc for a named type.
    pub trailer: Option<TypeTrailer>,
    /// The geometry if the header passes every attach check, else the error an attach
    /// would report (without waiting for a creator that has not finished).
    pub validation: Result<Geometry, OpenError>,
    /// The registered endpoints, when the queue has an endpoint table (filled by
    /// [`Ring::inspect`]; empty for [`Inspection::from_snapshot`]).
    pub endpoints: Vec<EndpointInfo>,
}

impl Inspection {
    /// The queue's delivery mode, as its header records it.
    pub fn mode(&self) -> Mode {
        Mode::from_flags(self.header.flags)
    }
}

impl Inspection {
    /// Checks a header already decoded (e.g. from a copy of a segment's first bytes, read
    /// with `read(2)` by a tool that only has read access) as [`Ring::inspect`] does, and
    /// as an attach would judge it without waiting: an `init_state` above "ready" is
    /// [`OpenError::CorruptHeader`], a creator that has not finished is
    /// [`OpenError::NotReady`] (a legacy queue counts as ready once its capacity and
    /// element size are set, as an attach accepts it after a short grace); otherwise every
    /// attach check is made against `file_size`. `read_trailer(offset)` is asked for the type trailer at that offset
    /// of the segment, only when the header is valid.
    ///
    /// ```
    /// use fastipc::MemRef;
    /// use fastipc::queue::{Inspection, Ring, RingSpec};
    /// use fastipc::queue::HeaderSnapshot;
    ///
    /// let ring = Ring::local(&RingSpec::new(8, 16))?;
    /// let len = ring.geometry().len as u64;
    /// let ok = Inspection::from_snapshot("copy", ring.header(), len, |_| None);
    /// assert_eq!(ok.validation?.capacity, 8);
    /// // The same header in a file too short for it.
    /// let short = Inspection::from_snapshot("copy", ring.header(), 100, |_| None);
    /// assert!(short.validation.unwrap_err().to_string().contains("100 bytes"));
    /// // Zeroed bytes: a queue whose creator has not finished (or not a queue at all).
    /// let mut zeros = [0u64; 8];
    /// let snap = HeaderSnapshot::decode(&MemRef::from_mut(bytemuck::cast_slice_mut(&mut zeros)))?;
    /// assert!(Inspection::from_snapshot("zeros", snap, 64, |_| None).validation.is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_snapshot(
        name: &str,
        header: HeaderSnapshot,
        file_size: u64,
        read_trailer: impl FnOnce(usize) -> Option<TypeTrailer>,
    ) -> Inspection {
        let validation = match handshake(&header, name) {
            Handshake::Ready | Handshake::LegacyReady => validate(&header, file_size, name),
            Handshake::Pending => Err(OpenError::NotReady {
                name: name.to_owned(),
                state: header.init_state,
                waited: Duration::ZERO,
            }),
            Handshake::Corrupt(e) => Err(e),
        };
        let trailer = match &validation {
            Ok(g) => read_trailer(g.trailer_offset()),
            Err(_) => None,
        };
        Inspection {
            header,
            file_size,
            trailer,
            validation,
            endpoints: Vec::new(),
        }
    }
}

impl Ring {
    /// Decodes and checks the header of segment `name` without waiting or attaching:
    /// what `fastipc inspect` shows. Fails only when the segment cannot be opened or is
    /// shorter than the header.
    pub fn inspect(name: &str) -> Result<Inspection, OpenError> {
        let segment = Segment::open(name, HEADER_SIZE).map_err(|e| truncated(name, e))?;
        let file_size = segment.len() as u64;
        let mem = segment.mem();
        let header = Header::from_mem(&mem).map_err(|_| OpenError::Truncated {
            name: name.to_owned(),
            size: file_size,
        })?;
        let snap = HeaderSnapshot::load(header);
        let mut inspection = Inspection::from_snapshot(name, snap, file_size, |offset| {
            TypeTrailer::read(&mem, offset)
        });
        if let Ok(g) = &inspection.validation
            && snap.flags & FLAG_ENDPOINTS != 0
            // SAFETY: `segment` (which `mem` maps) lives until the end of this function,
            // and the table is used only in this block.
            && let Some(table) = unsafe { Table::at(&mem, g.endpoints_offset(), Scope::Shared) }
        {
            inspection.endpoints = table.list();
        }
        Ok(inspection)
    }
}
