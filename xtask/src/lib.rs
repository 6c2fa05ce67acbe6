//! The library behind `cargo xtask`: builds, tests, measures and checks the voxserve container
//! images. `main.rs` parses the command line ([`cli::Cli`]) and calls one command's `run`.

mod base;
pub mod bench;
pub mod build_cmd;
mod ca;
pub mod cleanup;
pub mod cli;
pub mod config;
mod config_cmd;
mod cosign;
pub mod ctx;
mod diff;
pub mod docker;
pub mod dockerignore;
pub mod docs;
mod doctor;
mod emulation;
pub mod engine;
mod lint;
mod merge;
pub mod output;
pub mod process;
pub mod reclaim;
pub mod registry;
pub mod report;
mod reproduce;
pub mod sarif;
mod sbom;
mod scan;
mod sign;
pub mod sizes;
pub mod smoke;
pub mod test_cmd;
pub mod util;
mod verify;
