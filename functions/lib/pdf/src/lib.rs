//! meterai-pdf: documents, pure.
//!
//! The stamp (serial, vector mark with QR code, PDF incremental update), its
//! PAdES signature (CMS `SignedData` built and checked with typed ASN.1), and
//! what a stamped file says about itself. No AWS: a signing key is behind the
//! [`signing::Signer`] trait (the KMS signer is an adapter in `meterai`; the
//! local signer here serves tests and the benchmark).

pub mod reader;
pub mod signing;
pub mod stamp;
pub mod verify;
