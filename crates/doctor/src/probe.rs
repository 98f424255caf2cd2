//! Runtime probes (`--run`): start the `web` process with `dozen start` and watch it.

use std::path::Path;

use crate::Options;
use crate::error::DoctorError;
use crate::report::Finding;
use crate::rules::rule;
use crate::walk::SourceFile;

/// Start the web process and probe it.
pub(crate) fn run(
    _opts: &Options,
    _root: &Path,
    _kept: &[SourceFile],
) -> Result<Vec<Finding>, DoctorError> {
    Ok(vec![Finding::new(
        rule("TF00-RUN-SKIPPED"),
        None,
        None,
        "runtime probes are not available in this build",
    )])
}
