//! Figures an instance reads often and may show a few seconds old (the jobs
//! queue's depth, the drain rate): one read serves every request of the
//! instance for [`FOR`], so a deadline's polling and accepts do not each
//! cost the queue and the table a read.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// How long a read figure serves: the queue's depth moves by a few jobs in
/// that time at most per instance (each of its own sends is counted in),
/// against promises of a minute or more.
pub const FOR: Duration = Duration::from_secs(2);

/// The last value read and when, shared by the clones of one adapter. Aged
/// by the wall clock: a Lambda instance frozen between invocations must not
/// wake up to a value it thinks is fresh.
#[derive(Debug, Clone, Default)]
pub struct Recent<T> {
    last: Arc<Mutex<Option<(SystemTime, T)>>>,
}

impl<T: Clone> Recent<T> {
    /// The value read within [`FOR`], if any.
    pub fn get(&self) -> Option<T> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.as_ref()
            .filter(|(at, _)| at.elapsed().is_ok_and(|age| age < FOR))
            .map(|(_, value)| value.clone())
    }

    /// The last value read, however old (for when a new read fails).
    pub fn last(&self) -> Option<T> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.as_ref().map(|(_, value)| value.clone())
    }

    /// Keeps `value` as read now.
    pub fn put(&self, value: T) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((SystemTime::now(), value));
    }

    /// Changes the kept value in place (keeping its age), if there is one.
    pub fn update(&self, change: impl FnOnce(&mut T)) {
        if let Some((_, value)) = self.last.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            change(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_serves_its_clones_until_it_is_too_old() {
        let recent = Recent::<i64>::default();
        assert_eq!((recent.get(), recent.last()), (None, None));
        recent.put(7);
        let clone = recent.clone();
        assert_eq!(clone.get(), Some(7));
        clone.update(|v| *v += 1);
        assert_eq!(recent.get(), Some(8));
        // Aged past FOR, it is read again; the last value stays for a failed read.
        *recent.last.lock().unwrap() = Some((SystemTime::now() - FOR, 8));
        assert_eq!((clone.get(), clone.last()), (None, Some(8)));
    }
}
