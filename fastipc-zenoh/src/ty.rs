//! [`MessageType`]: what travels with every batch to say what its messages are.

use core::fmt;

use fastipc::IpcMessage;

/// A message type as the bridge sees it: element size, layout fingerprint and name.
///
/// A fingerprint of 0 means "not recorded" (a queue made by a peer without a type, an
/// untyped publisher): then only the element sizes are compared, as attaching does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageType {
    /// Bytes per message.
    pub element_size: usize,
    /// [`IpcMessage::FINGERPRINT`], or 0 when not known.
    pub fingerprint: u64,
    /// The type's name (empty when not known).
    pub name: String,
}

impl MessageType {
    /// The type of `T`.
    pub fn of<T: IpcMessage>() -> MessageType {
        MessageType {
            element_size: size_of::<T>(),
            fingerprint: T::FINGERPRINT,
            name: T::NAME.to_owned(),
        }
    }

    /// Messages of `element_size` bytes, type unknown.
    pub fn untyped(element_size: usize) -> MessageType {
        MessageType {
            element_size,
            fingerprint: 0,
            name: String::new(),
        }
    }

    /// Whether messages of type `other` may go into a queue of this type: same element
    /// size, and same fingerprint when both are known.
    pub fn accepts(&self, other: &MessageType) -> bool {
        self.element_size == other.element_size
            && (self.fingerprint == 0
                || other.fingerprint == 0
                || self.fingerprint == other.fingerprint)
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = if self.name.is_empty() {
            "<untyped>"
        } else {
            &self.name
        };
        write!(
            f,
            "`{name}` ({} bytes, fingerprint {:#018x})",
            self.element_size, self.fingerprint
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_compares_sizes_and_known_fingerprints() {
        let a = MessageType {
            element_size: 8,
            fingerprint: 1,
            name: "A".into(),
        };
        let b = MessageType {
            element_size: 8,
            fingerprint: 2,
            name: "B".into(),
        };
        assert!(a.accepts(&a));
        assert!(!a.accepts(&b));
        assert!(a.accepts(&MessageType::untyped(8)));
        assert!(MessageType::untyped(8).accepts(&b));
        assert!(!a.accepts(&MessageType::untyped(16)));
        assert_eq!(MessageType::of::<u64>().element_size, 8);
        assert!(
            b.to_string()
                .contains("`B` (8 bytes, fingerprint 0x0000000000000002)")
        );
    }
}
