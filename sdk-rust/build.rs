//! Emits `cfg(keyseal_os)` on targets with an operating system (files,
//! processes, a system clock): everything but `wasm32-unknown-unknown` and
//! other bare targets, where the file store, the OS fingerprint and the system
//! clock are left out and the app injects its own.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(keyseal_os)");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if !os.is_empty() && os != "unknown" && os != "none" {
        println!("cargo::rustc-cfg=keyseal_os");
    }
}
