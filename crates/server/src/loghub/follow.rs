//! Following a stream: its recent events, then the live ones, each once, with a count of what
//! a client did not get ([`Followed::Skipped`]).

use tokio::sync::broadcast;

use super::{Entry, UNNUMBERED};

/// The live part of [`super::AppLog::follow`].
#[derive(Debug)]
pub struct Follow {
    live: broadcast::Receiver<Entry>,
    /// The `seq` the next event should have (`None` before the first).
    next: Option<u64>,
    /// Whether the broadcast dropped events for this client since the last gap was told.
    lagged: bool,
    /// The event after a gap, given by the call after the one that told the gap.
    held: Option<Entry>,
}

/// What [`Follow::recv`] gives.
#[derive(Debug)]
pub enum Followed {
    /// The next event.
    Entry(Entry),
    /// This many events will not come: the client fell behind (`behind`), or, when it had just
    /// started following, they came in a burst while nobody followed (a stream that nobody
    /// follows holds back only what its ring keeps until its next commit).
    Skipped {
        /// How many events.
        lines: u64,
        /// Whether the client fell behind.
        behind: bool,
    },
    /// The stream ended.
    Closed,
}

impl Follow {
    /// Following from `live`, whose first new event should be `next` (`None`: whatever comes).
    pub(super) fn new(live: broadcast::Receiver<Entry>, next: Option<u64>) -> Follow {
        Follow {
            live,
            next,
            lagged: false,
            held: None,
        }
    }

    /// The next event, or how many were skipped before it (the event comes next). Cancel
    /// safe: nothing is lost when the future is dropped before it is ready.
    pub async fn recv(&mut self) -> Followed {
        if let Some(entry) = self.held.take() {
            self.next = Some(entry.seq + 1);
            return Followed::Entry(entry);
        }
        loop {
            match self.live.recv().await {
                Ok(entry) if entry.seq == UNNUMBERED => return Followed::Entry(entry),
                Ok(entry) => {
                    let expected = self.next.unwrap_or(entry.seq);
                    if entry.seq < expected {
                        // Shown already, with the recent events.
                        continue;
                    }
                    if entry.seq > expected {
                        let lines = entry.seq - expected;
                        self.held = Some(entry);
                        return Followed::Skipped {
                            lines,
                            behind: std::mem::take(&mut self.lagged),
                        };
                    }
                    self.next = Some(entry.seq + 1);
                    return Followed::Entry(entry);
                }
                Err(broadcast::error::RecvError::Lagged(_)) => self.lagged = true,
                Err(broadcast::error::RecvError::Closed) => return Followed::Closed,
            }
        }
    }
}

/// The line that tells a following `who` (`client`, `page`) that [`Followed::Skipped`] left
/// `lines` out.
pub fn skipped_note(lines: u64, behind: bool, who: &str) -> String {
    match behind {
        true => format!("{lines} lines skipped: this {who} fell behind"),
        false => format!(
            "{lines} lines skipped: they came in a burst while this {who} started following"
        ),
    }
}

#[cfg(test)]
mod tests {
    use dozen_logs::{EventKind, PlatformEvent};

    use super::*;
    use crate::loghub::{AppLog, Filter};

    /// The number in an `event NNNNN` entry.
    fn event_number(entry: &Entry) -> u32 {
        let json = entry.json();
        let at = json.find("event ").expect("an event line") + "event ".len();
        json[at..at + 5].parse().unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn following_from_the_middle_of_a_burst_shows_nothing_twice_and_counts_what_it_skips() {
        let dir = tempfile::tempdir().unwrap();
        let log = AppLog::with_history(10, &dir.path().join("shop"));
        let total = 20_000;
        let sender = log.sender();
        let (halfway_tx, halfway) = tokio::sync::oneshot::channel();
        let producer = tokio::spawn(async move {
            let mut halfway_tx = Some(halfway_tx);
            for n in 0..total {
                let _ = sender
                    .event(PlatformEvent::new(EventKind::Info, format!("event {n:05}")))
                    .await;
                if n == total / 2 {
                    let _ = halfway_tx.take().unwrap().send(());
                }
            }
        });
        halfway.await.unwrap();
        let (recent, mut follow) = log.follow(10, &Filter::default());
        let mut last = recent.last().map(event_number);
        let mut skipped_before = 0;
        let mut gaps = 0;
        while last != Some(total - 1) {
            match follow.recv().await {
                Followed::Entry(e) => {
                    let n = event_number(&e);
                    if let Some(before) = last {
                        assert_eq!(
                            n,
                            before + 1 + skipped_before,
                            "after event {before} and {skipped_before} skipped"
                        );
                    }
                    last = Some(n);
                    skipped_before = 0;
                }
                Followed::Skipped { lines, behind } => {
                    assert!(!behind, "a client that reads at once falls behind");
                    assert_eq!(skipped_before, 0, "two gaps in a row");
                    skipped_before = u32::try_from(lines).unwrap();
                    gaps += 1;
                }
                Followed::Closed => panic!("the stream ended"),
            }
        }
        producer.await.unwrap();
        assert!(gaps <= 1, "gaps after the client was following: {gaps}");
    }
}
