//! Standard output that a closed pipe ends quietly: `keyseal licenses list
//! | head -2` exits 0 when `head` has read enough, instead of panicking
//! (std's `println!` panics on a write error). The crate's `println!` and
//! `print!` (in `main.rs`) write through here.

use std::io::Write;

/// Writes `args` (and a line end when `newline`) to stdout. A closed pipe
/// ends the process with exit code 0 (the reader wanted no more); any other
/// write error ends it with the system-error code, saying why.
pub(crate) fn write(args: std::fmt::Arguments<'_>, newline: bool) {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush());
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(i32::from(crate::error::exit::SYSTEM));
    }
}

/// Writes bytes to stdout, as [`write`] does.
pub(crate) fn write_bytes(bytes: &[u8]) {
    write(format_args!("{}", String::from_utf8_lossy(bytes)), false);
}
