//! keyseal-issuer (work in progress).
