//! The admission queue in process. Early joiners wait with their draws; at the first look
//! after the opening they are numbered 1, 2, 3… in the order of their draws, and late joiners
//! take the next numbers. A place is then counted with the waitlist's block counts
//! ([`CountedLine`]) in bounded work, whatever the length of the line.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use holdfast_common::kv::KvError;
use holdfast_common::sync::lock;

use super::{AdmissionQueue, Admit, Configured, Joined, Overview, Standing};
use crate::domain::admission::{Pace, QueueSettings};
use crate::domain::ids::EventId;
use crate::domain::now_millis;
use crate::store::line::CountedLine;

/// The in-process adapter of [`AdmissionQueue`].
#[derive(Default)]
pub struct MemoryAdmission {
    queues: Mutex<HashMap<EventId, Queue>>,
}

impl MemoryAdmission {
    pub fn new() -> Self {
        Self::default()
    }
}

struct Queue {
    settings: QueueSettings,
    pace: Pace,
    /// Early joiners' draws, until they are numbered.
    early: HashMap<String, u64>,
    numbered: bool,
    numbers: HashMap<String, u64>,
    line: CountedLine,
    last_number: u64,
    admitted: HashMap<String, i64>,
}

impl Queue {
    fn new(settings: &QueueSettings) -> Self {
        Self {
            settings: settings.clone(),
            pace: Pace::opening(settings),
            early: HashMap::new(),
            numbered: false,
            numbers: HashMap::new(),
            line: CountedLine::default(),
            last_number: 0,
            admitted: HashMap::new(),
        }
    }

    /// Numbers the early joiners in the order of their draws, once the queue is open.
    fn number_early_joiners(&mut self, now_ms: i64) {
        if self.numbered || now_ms < self.settings.opens_at_ms {
            return;
        }
        let mut early: Vec<(u64, String)> = self
            .early
            .drain()
            .map(|(user, draw)| (draw, user))
            .collect();
        early.sort_unstable();
        for (_, user) in early {
            self.add(user);
        }
        self.numbered = true;
    }

    fn add(&mut self, user: String) {
        self.last_number += 1;
        let number = self.last_number;
        self.numbers.insert(user, number);
        self.line.join(number);
    }

    fn remove(&mut self, user: &str) -> bool {
        if self.early.remove(user).is_some() {
            return true;
        }
        let Some(number) = self.numbers.remove(user) else {
            return false;
        };
        self.line.leave(number);
        true
    }

    fn in_line(&self, user: &str) -> bool {
        self.early.contains_key(user) || self.numbers.contains_key(user)
    }

    fn length(&self) -> u64 {
        (self.early.len() + self.numbers.len()) as u64
    }

    /// `user`'s place once numbered.
    fn place(&self, user: &str) -> Option<u64> {
        let number = *self.numbers.get(user)?;
        Some(self.line.before(number) + 1)
    }
}

#[async_trait]
impl AdmissionQueue for MemoryAdmission {
    async fn configure(
        &self,
        event_id: &EventId,
        settings: &QueueSettings,
    ) -> Result<Configured, KvError> {
        let mut queues = lock(&self.queues);
        let now = now_millis();
        match queues.get_mut(event_id) {
            Some(queue) if now >= queue.settings.opens_at_ms => return Ok(Configured::AlreadyOpen),
            Some(queue) => {
                queue.settings = settings.clone();
                queue.pace = Pace::opening(settings);
            }
            None => {
                queues.insert(event_id.clone(), Queue::new(settings));
            }
        }
        Ok(Configured::Done)
    }

    async fn remove(&self, event_id: &EventId) -> Result<(), KvError> {
        lock(&self.queues).remove(event_id);
        Ok(())
    }

    async fn settings(&self, event_id: &EventId) -> Result<Option<(QueueSettings, Pace)>, KvError> {
        let queues = lock(&self.queues);
        Ok(queues
            .get(event_id)
            .map(|queue| (queue.settings.clone(), queue.pace)))
    }

    async fn overview(
        &self,
        event_id: &EventId,
        count_shopping: bool,
    ) -> Result<Option<Overview>, KvError> {
        let mut queues = lock(&self.queues);
        let Some(queue) = queues.get_mut(event_id) else {
            return Ok(None);
        };
        let now = now_millis();
        queue.number_early_joiners(now);
        Ok(Some(Overview {
            settings: queue.settings.clone(),
            pace: queue.pace,
            admitted_by: queue.pace.admitted_by(now),
            length: queue.length(),
            admissions: queue.admitted.len() as u64,
            shopping: count_shopping.then(|| {
                queue
                    .admitted
                    .values()
                    .filter(|&&until| until > now)
                    .count() as u64
            }),
            now_ms: now,
        }))
    }

    async fn join(&self, event_id: &EventId, user_id: &str, draw: u64) -> Result<Joined, KvError> {
        let mut queues = lock(&self.queues);
        let Some(queue) = queues.get_mut(event_id) else {
            return Ok(Joined::NoQueue);
        };
        let now = now_millis();
        queue.number_early_joiners(now);
        if queue.in_line(user_id) {
            return Ok(Joined::InLine { new: false });
        }
        if now < queue.settings.opens_at_ms {
            if !queue.settings.early_joining {
                return Ok(Joined::NotOpenYet);
            }
            queue.early.insert(user_id.to_string(), draw);
        } else {
            queue.add(user_id.to_string());
        }
        Ok(Joined::InLine { new: true })
    }

    async fn leave(&self, event_id: &EventId, user_id: &str) -> Result<bool, KvError> {
        let mut queues = lock(&self.queues);
        let Some(queue) = queues.get_mut(event_id) else {
            return Ok(false);
        };
        if queue.admitted.contains_key(user_id) {
            return Ok(false);
        }
        Ok(queue.remove(user_id))
    }

    async fn standing(
        &self,
        event_id: &EventId,
        user_id: &str,
    ) -> Result<Option<Standing>, KvError> {
        let mut queues = lock(&self.queues);
        let Some(queue) = queues.get_mut(event_id) else {
            return Ok(None);
        };
        let now = now_millis();
        queue.number_early_joiners(now);
        Ok(Some(Standing {
            place: queue.place(user_id),
            in_line: queue.in_line(user_id),
            admitted_by: queue.pace.admitted_by(now),
            length: queue.length(),
            pace: queue.pace,
            settings: queue.settings.clone(),
            admission_expires_at_ms: queue.admitted.get(user_id).copied(),
            now_ms: now,
        }))
    }

    async fn admit(&self, event_id: &EventId, user_id: &str) -> Result<Admit, KvError> {
        let mut queues = lock(&self.queues);
        let Some(queue) = queues.get_mut(event_id) else {
            return Ok(Admit::NoQueue);
        };
        let now = now_millis();
        queue.number_early_joiners(now);
        if let Some(&expiry) = queue.admitted.get(user_id) {
            return Ok(if expiry > now {
                Admit::Admitted {
                    expires_at_ms: expiry,
                }
            } else {
                Admit::Expired {
                    expired_at_ms: expiry,
                }
            });
        }
        if !queue.in_line(user_id) {
            return Ok(Admit::NotInLine);
        }
        let admitted_by = queue.pace.admitted_by(now);
        let place = queue.place(user_id);
        match place {
            Some(place) if place <= admitted_by => {
                let window = i64::try_from(queue.settings.window.as_millis()).unwrap_or(i64::MAX);
                let expiry = now.saturating_add(window);
                queue.admitted.insert(user_id.to_string(), expiry);
                Ok(Admit::Admitted {
                    expires_at_ms: expiry,
                })
            }
            place => Ok(Admit::Waiting { place, admitted_by }),
        }
    }

    async fn change_rate(
        &self,
        event_id: &EventId,
        rate_per_minute: u32,
    ) -> Result<Option<Pace>, KvError> {
        let mut queues = lock(&self.queues);
        let Some(queue) = queues.get_mut(event_id) else {
            return Ok(None);
        };
        queue.pace = queue.pace.changed(now_millis(), rate_per_minute);
        if rate_per_minute > 0 {
            queue.settings.rate_per_minute = rate_per_minute;
        }
        Ok(Some(queue.pace))
    }
}
