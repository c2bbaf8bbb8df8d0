//! `keyseal`: the release engineer's command line over keyseal-issuer.

use std::process::ExitCode;

use clap::Parser;

/// `println!` that ends quietly on a closed pipe (see [`out`]); shadows
/// std's in every module of the crate.
macro_rules! println {
    () => {
        $crate::out::write(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*), true)
    };
}

/// `print!` that ends quietly on a closed pipe (see [`out`]).
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*), false)
    };
}

mod cli;
mod commands;
mod env;
mod error;
mod out;
mod show;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // A usage error: with --json, also one JSON document on stdout,
            // as every other error gives (help and --version are not errors).
            use clap::error::ErrorKind;
            let usage = !matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
                && e.exit_code() == i32::from(error::exit::USAGE);
            if usage && std::env::args_os().any(|a| a == "--json") {
                let message = e.kind().as_str().map_or_else(
                    || e.to_string().lines().next().unwrap_or("").to_owned(),
                    str::to_owned,
                );
                error::CliError::new("usage", error::exit::USAGE, message, "see --help")
                    .report_json();
            }
            e.exit();
        }
    };
    let json = cli.json;
    env::passphrase_from(cli.passphrase_file.clone(), cli.passphrase_fd);
    env::set_org(cli.org.clone());
    env::set_database_url(cli.database_url.clone());
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            e.report(json);
            e.exit_code()
        }
    }
}
