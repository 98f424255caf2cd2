//! `git push` deploys: the server speaks git's smart HTTP protocol on the API port, at
//! `/git/<app>.git`, with real git doing the protocol.
//!
//! - [`http`]: each request runs `git http-backend` (git's own CGI program) under the
//!   supervisor, after checking the API token given as the password of HTTP basic auth:
//!   `deploy` on the app to push (receive-pack), `read` to fetch or clone (upload-pack).
//! - [`hook`]: a push runs the repository's `pre-receive` hook, which is the `dozen` binary
//!   (`dozen git-hook pre-receive`). It reaches back to this server over a Unix socket of its
//!   own push (in the server's private data directory, with a one-time secret), and the server
//!   builds the pushed commit, makes the release and rolls it out under the app's lock, sending
//!   the build output back as it comes; the hook prints it, which git shows the pusher as
//!   `remote:` lines. A failed build or release makes the hook fail, so git refuses the ref
//!   update: the branch does not move and the running release stays.
//! - [`repo`]: one bare repository per app under `DOZEN_DATA_DIR/git/`, made on the app's first
//!   git request and removed with the app. The data directory is the server's alone (0700), and
//!   apps run confined with it hidden, so no app can read another's repository.

mod cgi;
mod command;
pub mod hook;
pub mod http;
mod push;
pub mod repo;

pub use http::router;
pub use repo::remove_repo;
