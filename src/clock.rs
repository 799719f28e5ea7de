//! The clock, injected: the system clock in production, a hand-set one in tests and replays, so
//! that lift windows and deadlines can be tested without waiting.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

/// Where `now` comes from.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// A clock that moves only when told.
    Manual(Arc<Mutex<DateTime<Utc>>>),
}

impl Clock {
    /// A manual clock set to `t`.
    pub fn manual(t: DateTime<Utc>) -> Clock {
        Clock::Manual(Arc::new(Mutex::new(t)))
    }

    /// Now.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Manual(t) => *t.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// Moves a manual clock forward (no effect on the system clock).
    pub fn advance(&self, d: Duration) {
        if let Clock::Manual(t) = self {
            let mut g = t.lock().unwrap_or_else(|p| p.into_inner());
            *g += d;
        }
    }

    /// Sets a manual clock (no effect on the system clock).
    pub fn set(&self, to: DateTime<Utc>) {
        if let Clock::Manual(t) = self {
            *t.lock().unwrap_or_else(|p| p.into_inner()) = to;
        }
    }
}
