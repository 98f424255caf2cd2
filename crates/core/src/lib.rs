//! The pure model and file formats of dozen.
//!
//! This crate turns what a user writes into typed values the rest of dozen
//! acts on:
//!
//! - [`Procfile`] / [`ProcessType`]: `name: command` lines ([`procfile`]);
//! - [`parse_env`] / [`load_env_files`]: `.env` files with quoting and
//!   `${VAR}` expansion ([`dotenv`]);
//! - [`Formation`]: process type -> quantity, as in `web=2,worker=1`, and
//!   [`PortPlan`], which turns a Procfile and a formation into the
//!   [`Instance`]s to run with their ports ([`formation`]);
//! - [`name`]: the rules for process type, app and variable names;
//! - [`command`]: how a Procfile command line is run (`sh -c`, `exec` in front);
//! - [`RunEnv`]: what a slug's processes need in their environment besides config ([`run_env`]);
//! - [`Size`]: process sizes (memory, CPU, processes) like Heroku's dyno sizes, and byte
//!   quantities such as `4GiB` ([`size`]).
//!
//! Every error is a `thiserror` enum that names the file and the 1-based line
//! where that makes sense, and never includes a config value.
//!
//! It is **not** for running anything: no processes, no async runtime, no
//! network. Reading a file with `std::fs` is as far as it goes; supervising,
//! logging and serving live in the crates that build on this one.
//!
//! # Example
//!
//! ```
//! use dozen_core::{Formation, PortPlan, Procfile, parse_env};
//! use std::path::Path;
//!
//! let procfile = Procfile::parse("web: ./server\nworker: ./work\n", Path::new("Procfile"))?;
//! let formation = Formation::parse("web=2,worker=1")?;
//! let plan = PortPlan::plan(&procfile, &formation, 7000, &[])?;
//! let ports: Vec<(String, u16)> = plan.iter().map(|i| (i.name(), i.port)).collect();
//! assert_eq!(ports, [("web.1".into(), 7000), ("web.2".into(), 7001), ("worker.1".into(), 7100)]);
//!
//! let env = parse_env("DATABASE_URL=postgres://localhost/${APP:-shop}\n", Path::new(".env"), &|_| None)?;
//! assert_eq!(env[0].1, "postgres://localhost/shop");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod command;
pub mod dotenv;
pub mod formation;
pub mod name;
pub mod procfile;
pub mod run_env;
pub mod size;
mod text_file;

pub use dotenv::{EnvError, load_env_files, parse_env};
pub use formation::{Formation, FormationError, Instance, PortPlan};
pub use name::NameError;
pub use procfile::{ProcessType, Procfile, ProcfileError};
pub use run_env::RunEnv;
pub use size::{DEFAULT_SIZE, SIZES, Size, SizeError};
