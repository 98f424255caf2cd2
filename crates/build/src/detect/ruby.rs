//! Ruby (`Gemfile`): `bundle install` into `vendor/bundle` in deployment mode, without the
//! development and test groups. No Procfile: Rails gets `bin/rails server`, a rack app
//! (`config.ru`) `bundle exec rackup`, as on Heroku.

use std::path::Path;

use super::{BuildPlan, DefaultWeb, Host, missing, read_optional};
use crate::error::BuildError;

pub(super) fn plan(dir: &Path, host: &Host) -> Result<BuildPlan, BuildError> {
    for tool in ["ruby", "bundle"] {
        if host.which(tool).is_none() {
            return Err(missing(tool, "Gemfile", "ruby"));
        }
    }
    let mut plan = BuildPlan::new(
        "ruby",
        "Gemfile",
        vec![
            "bundle config set --local deployment true && bundle config set --local path vendor/bundle && bundle config set --local without 'development:test' && bundle install --jobs 4".into(),
        ],
    );
    let rails = dir.join("config").join("application.rb").is_file()
        || read_optional(dir, "Gemfile.lock")?.is_some_and(|l| l.contains("\n    rails ("));
    plan.default_web = if rails {
        DefaultWeb::Command("bin/rails server -p ${PORT:-5000} -e ${RAILS_ENV:-production}".into())
    } else if dir.join("config.ru").is_file() {
        DefaultWeb::Command("bundle exec rackup config.ru -p ${PORT:-5000}".into())
    } else {
        DefaultWeb::None(
            "a Ruby app that is neither Rails nor rack (config.ru) has no default web process"
                .into(),
        )
    };
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::super::tests::plan_on;
    use super::*;

    #[test]
    fn ruby_needs_bundler_and_gets_rack_or_rails_defaults() {
        let e = plan_on(&[("Gemfile", "")], &[("ruby", "")], &[]).unwrap_err();
        assert!(
            matches!(e, BuildError::MissingTool { ref tool, .. } if tool == "bundle"),
            "{e}"
        );
        let tools = [("ruby", ""), ("bundle", "")];
        let plan = plan_on(&[("Gemfile", ""), ("config.ru", "")], &tools, &[]).expect("plan");
        assert!(plan.steps[0].contains("path vendor/bundle"), "{plan:?}");
        assert!(matches!(plan.default_web, DefaultWeb::Command(ref c) if c.contains("rackup")));
        let plan = plan_on(
            &[("Gemfile", ""), ("config/application.rb", "")],
            &tools,
            &[],
        )
        .expect("plan");
        assert!(
            matches!(plan.default_web, DefaultWeb::Command(ref c) if c.starts_with("bin/rails server"))
        );
    }
}
