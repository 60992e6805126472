//! The `jitgate` binary: parse the command line, read the environment once, hand over to the library.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = jitgate::cli::Cli::parse();
    jitgate::cli::execute(cli, jitgate::config::Environment::from_process()).await
}
