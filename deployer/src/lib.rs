//! The multi-image deployer: reads a Bareon provision.json that lists several images and
//! lays them out on one node's disks.
//!
//! This layer parses and validates the config: [`validate()`] turns provision.json text
//! into a [`ProvisionConfig`] or into every [`ConfigError`] at once, without touching the
//! system. [`size`] parses Bareon's size strings; [`cli`] is the command line.

pub mod cli;
pub mod config;
pub mod size;
pub mod validate;

pub use config::ProvisionConfig;
pub use size::Size;
pub use validate::{validate, ConfigError, JsonPath};
