//! The stamp itself: serial numbers, the visible mark and the PDF update.

mod lazy;
pub mod mark;
pub mod pdf;
pub mod signatures;

pub use meterai_core::serial::Serial;
pub use pdf::{
    prepare, stamp, Limits, MarkText, Placement, Prepared, SignatureSpace, StampError, Stamped,
};
