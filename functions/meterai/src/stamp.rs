//! The stamp itself: serial numbers, the visible mark and the PDF update.

pub mod mark;
pub mod pdf;
pub mod serial;

pub use pdf::{stamp, Limits, MarkText, Placement, StampError, Stamped};
pub use serial::Serial;
