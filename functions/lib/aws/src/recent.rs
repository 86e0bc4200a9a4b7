//! Figures an instance reads often and may show a few seconds old (the jobs
//! queue's depth, the drain rate): one read serves every request of the
//! instance for [`FOR`], so a deadline's polling and accepts do not each
//! cost the queue and the table a read.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a read figure serves: well under the shortest advice a client
/// gets from it (read again in 1 s at the soonest, promised 60 s at least).
pub const FOR: Duration = Duration::from_secs(2);

/// The last value read and when, shared by the clones of one adapter.
#[derive(Debug, Clone, Default)]
pub struct Recent<T> {
    last: Arc<Mutex<Option<(Instant, T)>>>,
}

impl<T: Clone> Recent<T> {
    /// The value read within [`FOR`], if any.
    pub fn get(&self) -> Option<T> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.as_ref()
            .filter(|(at, _)| at.elapsed() < FOR)
            .map(|(_, value)| value.clone())
    }

    /// Keeps `value` as read now.
    pub fn put(&self, value: T) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_serves_its_clones_until_it_is_too_old() {
        let recent = Recent::<i64>::default();
        assert_eq!(recent.get(), None);
        recent.put(7);
        let clone = recent.clone();
        assert_eq!(clone.get(), Some(7));
        // Aged past FOR, it is read again.
        *recent.last.lock().unwrap() = Some((Instant::now() - FOR, 7));
        assert_eq!(clone.get(), None);
    }
}
