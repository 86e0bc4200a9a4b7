//! The stamp itself: serial numbers, the visible mark and the PDF update.

pub mod mark;
pub mod pdf;
pub mod serial;
pub mod signatures;

pub use pdf::{
    prepare, stamp, Limits, MarkText, Placement, Prepared, SignatureSpace, StampError, Stamped,
};
pub use serial::Serial;
