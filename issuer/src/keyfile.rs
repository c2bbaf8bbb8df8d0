//! Signing keys at rest: the `keyseal-keyfile` crate (shared with the
//! Python wheel), re-exported.

pub use keyseal_keyfile::*;
