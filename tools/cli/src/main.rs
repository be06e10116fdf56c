//! `bouncer`: the operator's command line for the Bouncer filter.
//!
//! - `bouncer check CONFIG` runs the filter's own configuration code (`Policy::from_json`, the
//!   function `on_configure` calls) on a file, so a configuration is known good before it
//!   reaches a gateway (in Kong 3.4 nothing validates it first and a bad one kills the worker);
//! - `bouncer hash-key` prints the `key_sha256` of an API key read from stdin;
//! - `bouncer import-kong kong.yaml` converts a Kong declarative (decK) file;
//! - `bouncer token` signs a test token for a consumer of a configuration.
//!
//! Exit status: 0 done, 1 the input is refused (invalid configuration, no such consumer, ...),
//! 2 usage or I/O errors.

mod check;
mod kong;
mod token;

use clap::{Parser, Subcommand};
use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "bouncer",
    version,
    about = "Check Bouncer configurations, hash API keys, import Kong decK files, sign test tokens"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a configuration with the filter's own code
    ///
    /// Prints `ok` and a summary, or the error with its JSON path (exit 1), exactly as the
    /// filter would refuse it. A .yaml/.yml file is read as a Kong declarative file and every
    /// `bouncer` filter of its filter chains is checked.
    Check {
        /// The configuration (JSON), or a Kong declarative file (YAML)
        config: PathBuf,
    },
    /// Read an API key on stdin (one trailing newline is dropped) and print its `key_sha256`
    HashKey,
    /// Convert a Kong declarative (decK) file into a Bouncer configuration
    ///
    /// Consumers, jwt_secrets, keyauth_credentials (hashed), acls and the jwt, acl and
    /// key-auth plugins. What could not be converted, or whose meaning changed, is listed on
    /// stderr; the output passes `bouncer check`.
    ImportKong {
        /// The decK / declarative file (YAML or JSON)
        file: PathBuf,
        /// Write the configuration here instead of stdout
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Sign a test token for a consumer of a configuration
    ///
    /// HS* with the consumer's secret; RS*, PS*, ES256, ES384, EdDSA with a private key file.
    /// The token is checked with the configuration's key before it is printed.
    Token(token::TokenArgs),
}

/// A failure: its message and exit status.
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    /// The input was refused (exit 1).
    pub fn refused(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
        }
    }
    /// Usage or I/O (exit 2).
    pub fn io(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
}

/// A file's text; not readable or not UTF-8 is an I/O failure.
pub fn read_text(path: &std::path::Path) -> Result<String, Failure> {
    let bytes = std::fs::read(path).map_err(|e| Failure::io(format!("{}: {e}", path.display())))?;
    String::from_utf8(bytes).map_err(|_| Failure::io(format!("{}: not UTF-8", path.display())))
}

/// The lowercase hex SHA-256 of a key: the `key_sha256` of `keyauth_credentials`.
pub fn key_sha256(key: &[u8]) -> String {
    bouncer_crypto::sha256(key)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hash_key() -> Result<(), Failure> {
    let mut key = Vec::new();
    std::io::stdin()
        .read_to_end(&mut key)
        .map_err(|e| Failure::io(format!("stdin: {e}")))?;
    if key.last() == Some(&b'\n') {
        key.pop();
        if key.last() == Some(&b'\r') {
            key.pop();
        }
    }
    if key.is_empty() {
        return Err(Failure::refused("the key on stdin is empty"));
    }
    println!("{}", key_sha256(&key));
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { config } => check::run(&config),
        Command::HashKey => hash_key(),
        Command::ImportKong { file, output } => kong::run(&file, output.as_deref()),
        Command::Token(args) => token::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("bouncer: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
