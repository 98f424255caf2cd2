//! Builds for dozen: source in, immutable slug out (factor V, build/release/run, and factor II,
//! dependencies isolated in the slug).
//!
//! The path of one deploy through this crate:
//!
//! 1. **Client**: [`pack_source`] packs the app directory as a deterministic `tar.zst` (the
//!    files `git ls-files` lists in a checkout, else the directory walk; minus
//!    `.dozenignore` patterns, `.git` and `.dozen`).
//! 2. **Server**: [`unpack_source`] unpacks the upload as untrusted input within [`Limits`]
//!    (no absolute paths, no `..`, no links out of the tree, no devices or FIFOs, bounded
//!    bytes and entries; all or nothing).
//! 3. [`AppManifest::load`] reads `dozen.toml` / `app.json`; [`BuildPlan::detect`] picks the
//!    build steps (the declared command, else by ecosystem).
//! 4. [`build`] copies the source to a fresh directory and runs the steps there through
//!    [`dozen_supervise::Supervisor::run_once`], with a clean environment (no runtime config
//!    vars) and a per-app cache directory; it checks the Procfile.
//! 5. [`pack_slug`] packs the built tree as a deterministic `tar.zst` named by its blake3
//!    digest, with a JSON [`SlugManifest`] beside it.
//! 6. [`extract_slug`] unpacks a slug into a release's fresh directory, verifying the digest
//!    as it reads.
//!
//! **Not for**: storing builds or releases (the store), deciding when to build or which
//! release runs (the server), running the app (`dozen_supervise`), or downloading anything
//! itself (the build steps do what the app's toolchain does).
//!
//! Main types: [`BuildRequest`] / [`BuildOutput`], [`BuildPlan`], [`AppManifest`],
//! [`Slug`] / [`SlugManifest`], [`Limits`], and [`BuildError`], whose every variant names the
//! file, archive entry, manifest field or build step it is about.
//!
//! # Example
//!
//! Pack a directory, unpack it on the "server", and turn it into a slug (no build step
//! needed: it has neither a build command nor a known ecosystem file):
//!
//! ```
//! use dozen_build::{AppManifest, BuildPlan, Limits, SlugMeta, extract_slug, pack_slug, pack_source, unpack_source};
//!
//! let tmp = tempfile::tempdir()?;
//! let app = tmp.path().join("app");
//! std::fs::create_dir(&app)?;
//! std::fs::write(app.join("Procfile"), "web: ./serve\n")?;
//! std::fs::write(app.join("serve"), "#!/bin/sh\nexec python3 -m http.server \"$PORT\"\n")?;
//!
//! let mut upload = Vec::new();
//! pack_source(&app, &mut upload)?;
//! let source = tmp.path().join("source");
//! unpack_source(upload.as_slice(), &source, &Limits::default())?;
//!
//! let plan = BuildPlan::detect(&source, &AppManifest::load(&source)?)?;
//! assert_eq!(plan.kind, "none");
//!
//! let slug = pack_slug(&source, &tmp.path().join("slugs"), SlugMeta::default())?;
//! assert_eq!(slug.path.file_name().unwrap().to_str().unwrap(), format!("{}.tar.zst", slug.digest));
//! extract_slug(&slug.path, &tmp.path().join("releases/v1"))?;
//! assert!(tmp.path().join("releases/v1/Procfile").is_file());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod archive;
mod build;
mod detect;
mod disk;
mod error;
mod manifest;
mod run_env;
mod slug;
mod source;

pub use archive::{Limits, UnpackStats};
pub use build::{
    BUILD_PROCESS_NAME, BUILD_SWITCHES, BuildOutput, BuildRequest, PASSED_THROUGH, build,
};
pub use detect::{BuildPlan, CARGO_TARGET_IN_CACHE, DefaultWeb, Host};
pub use error::{BuildError, Unsafe};
pub use manifest::{APP_JSON, AppJson, AppManifest, DOZEN_TOML, MAX_BOOT_TIMEOUT};
pub use run_env::{PATH_DIRS, local_run_env, run_env_from_json, run_env_of};
pub use slug::{
    AppJsonMeta, DOZEN_VERSION, ManifestProcessType, Slug, SlugManifest, SlugMeta, extract_slug,
    pack_slug,
};
pub use source::{IGNORE_FILE, SourceStats, pack_source, unpack_source};
