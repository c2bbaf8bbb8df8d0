//! keyseal: validate license keys offline (work in progress).
