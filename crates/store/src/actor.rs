//! Who makes a change: the name a new release records as its `created_by`.
//!
//! The caller that acts for someone (the server's API, for the token that sent a request) runs
//! its work inside [`acting_as`]; every release made inside records that name, without each
//! store method taking it as a parameter. The name lives in a tokio task-local, so work handed
//! to another task (`tokio::spawn`) must carry it along with [`inherit`]. A release made outside
//! any [`acting_as`] is the server's own doing and records [`SERVER_ACTOR`].

use std::future::Future;

/// The actor of releases made outside any [`acting_as`]: the server itself.
pub const SERVER_ACTOR: &str = "dozen";

tokio::task_local! {
    static ACTOR: Option<String>;
}

/// Run `work` as `actor`: releases it makes record `actor` as who made them.
pub async fn acting_as<F: Future>(actor: impl Into<String>, work: F) -> F::Output {
    ACTOR.scope(Some(actor.into()), work).await
}

/// `work`, to run in another task, as whoever the current task acts for (nobody: the server).
/// Wrap what is passed to `tokio::spawn` with this where it may make releases.
pub fn inherit<F: Future>(work: F) -> impl Future<Output = F::Output> {
    ACTOR.scope(current(), work)
}

/// Whom the current task acts for, if anyone.
pub fn current() -> Option<String> {
    ACTOR.try_with(Clone::clone).ok().flatten()
}

/// What a release made now records: [`current`], or [`SERVER_ACTOR`].
pub(crate) fn recorded() -> String {
    current().unwrap_or_else(|| SERVER_ACTOR.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_actor_reaches_inherited_tasks_only() {
        assert_eq!(recorded(), SERVER_ACTOR);
        acting_as("ci", async {
            assert_eq!(current().as_deref(), Some("ci"));
            let carried = tokio::spawn(inherit(async { current() }));
            assert_eq!(carried.await.expect("join").as_deref(), Some("ci"));
            let lost = tokio::spawn(async { current() });
            assert_eq!(lost.await.expect("join"), None);
        })
        .await;
        assert_eq!(current(), None);
    }
}
