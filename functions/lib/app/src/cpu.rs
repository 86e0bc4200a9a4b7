//! CPU-bound work under a deadline. Parsing a hostile PDF cannot be
//! interrupted (lopdf is not cancellable), so a deadline can only stop the
//! waiting, not the thread: the thread keeps the process's [`Slot`] until it
//! really ends, and new work waits for the slot briefly and is otherwise
//! refused, instead of sharing the CPU with a runaway.

use std::time::Duration;

/// How long new work waits for the slot before it is refused (a job goes
/// back to the queue, a file to verify gets 503): long enough for an honest
/// parse to end, short against the caller's own deadline.
pub const SLOT_WAIT: Duration = Duration::from_secs(2);

/// One piece of CPU-bound work at a time per process (a Lambda instance
/// serves one request or one batch at a time, on about one core).
#[derive(Debug, Clone)]
pub struct Slot(std::sync::Arc<tokio::sync::Semaphore>);

impl Default for Slot {
    fn default() -> Self {
        Self(std::sync::Arc::new(tokio::sync::Semaphore::new(1)))
    }
}

impl Slot {
    /// The slot, if it frees within `wait`.
    pub async fn take(&self, wait: Duration) -> Option<tokio::sync::OwnedSemaphorePermit> {
        tokio::time::timeout(wait, self.0.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }
}

/// Why bounded work did not give its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unfinished {
    /// Earlier work that ran over its time still holds the slot.
    Busy,
    /// Over its time; its thread runs on, holding the slot.
    TimedOut,
    /// It panicked.
    Crashed(String),
}

/// Runs `work` on a blocking thread holding `slot` (waiting at most `wait`
/// for it), and waits at most `budget` for its result.
pub async fn bounded<T: Send + 'static>(
    slot: &Slot,
    wait: Duration,
    budget: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Unfinished> {
    let permit = slot.take(wait).await.ok_or(Unfinished::Busy)?;
    let task = tokio::task::spawn_blocking(move || {
        // Held until the thread ends, even after the caller stopped waiting.
        let _permit = permit;
        work()
    });
    match tokio::time::timeout(budget, task).await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(join)) => Err(Unfinished::Crashed(join.to_string())),
        Err(_) => Err(Unfinished::TimedOut),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_runaway_keeps_the_slot_until_its_thread_ends() {
        let slot = Slot::default();
        let ms = Duration::from_millis;
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        // Runs until told to stop: far over its budget.
        let runaway = bounded(&slot, ms(0), ms(20), move || rx.recv().ok());
        assert_eq!(runaway.await, Err(Unfinished::TimedOut));
        // Its thread still runs: new work is refused, not run beside it.
        assert_eq!(
            bounded(&slot, ms(50), ms(1000), || 1).await,
            Err(Unfinished::Busy)
        );
        tx.send(()).unwrap();
        assert_eq!(bounded(&slot, ms(2000), ms(1000), || 2).await, Ok(2));
        let crashed = bounded(&slot, ms(100), ms(1000), || -> i32 { panic!("bad file") }).await;
        assert!(
            matches!(crashed, Err(Unfinished::Crashed(_))),
            "{crashed:?}"
        );
        assert_eq!(bounded(&slot, ms(100), ms(1000), || 3).await, Ok(3));
    }
}
