//! Stamp jobs: the states a job goes through and the moves between them.
//!
//! `queued` -> `processing` (a worker took it; again after a worker died) ->
//! `done` (stored, stamp spent) or `failed` (stamp returned). `queued` may
//! also fail directly (the message could not be sent, or it was
//! dead-lettered). `done` and `failed` are final.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Processing,
    Done,
    Failed,
}

impl JobStatus {
    pub const ALL: [JobStatus; 4] = [
        JobStatus::Queued,
        JobStatus::Processing,
        JobStatus::Done,
        JobStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Processing => "processing",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Done | JobStatus::Failed)
    }

    /// The states a job may move to `next` from (the condition of that write).
    pub fn sources_of(next: JobStatus) -> &'static [JobStatus] {
        match next {
            JobStatus::Queued => &[],
            // A worker that died mid-job leaves `processing`: the next delivery takes it again.
            JobStatus::Processing => &[JobStatus::Queued, JobStatus::Processing],
            JobStatus::Done => &[JobStatus::Processing],
            JobStatus::Failed => &[JobStatus::Queued, JobStatus::Processing],
        }
    }

    pub fn can_move_to(self, next: JobStatus) -> bool {
        Self::sources_of(next).contains(&self)
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_states_never_move() {
        for from in JobStatus::ALL {
            for to in JobStatus::ALL {
                if from.is_final() {
                    assert!(!from.can_move_to(to), "{from} -> {to}");
                }
            }
            assert_eq!(JobStatus::parse(from.as_str()), Some(from));
        }
        assert!(JobStatus::Queued.can_move_to(JobStatus::Processing));
        assert!(JobStatus::Processing.can_move_to(JobStatus::Processing));
        assert!(JobStatus::Processing.can_move_to(JobStatus::Done));
        assert!(
            !JobStatus::Queued.can_move_to(JobStatus::Done),
            "a job is stored before it is done"
        );
        assert!(JobStatus::Queued.can_move_to(JobStatus::Failed));
        assert_eq!(JobStatus::parse("lost"), None);
    }
}
