//! `keyseal`: the release engineer's command line over keyseal-issuer.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;
mod env;
mod error;
mod show;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
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
