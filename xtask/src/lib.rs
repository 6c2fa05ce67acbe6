//! The library behind `cargo xtask`: builds, tests, measures and checks the voxserve container
//! images. `main.rs` parses the command line ([`cli::Cli`]) and calls one command's `run`.

pub mod base;
pub mod bench;
pub mod build_cmd;
mod ca;
pub mod cleanup;
pub mod cli;
pub mod config;
pub mod config_cmd;
mod cosign;
pub mod ctx;
pub mod diff;
pub mod docker;
pub mod docs;
pub mod doctor;
mod emulation;
pub mod engine;
pub mod lint;
pub mod merge;
pub mod output;
pub mod process;
pub mod reclaim;
pub mod registry;
pub mod report;
pub mod reproduce;
pub mod sarif;
pub mod sbom;
pub mod scan;
pub mod sign;
pub mod sizes;
pub mod smoke;
pub mod test_cmd;
pub mod util;
pub mod verify;
