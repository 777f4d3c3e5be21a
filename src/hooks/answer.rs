//! [`Answer`]: what a hook returns, at once or later.

use std::future::Future;
use std::pin::Pin;

/// A hook's answer: given at once (no allocation, no wait), or later by a future that
/// the broker awaits within the hook budget ([`Broker::hook_budget`]).
///
/// [`Broker::hook_budget`]: crate::Broker::hook_budget
///
/// ```
/// use starling::hooks::{Answer, Decision};
/// let now: Answer<Decision> = Answer::ready(Decision::Allow);
/// let later: Answer<Decision> = Answer::later(async { Decision::Deny });
/// assert!(now.is_ready() && !later.is_ready());
/// ```
pub struct Answer<T>(pub(crate) Inner<T>);

pub(crate) enum Inner<T> {
    Ready(T),
    Later(Pin<Box<dyn Future<Output = T> + Send>>),
}

impl<T> Answer<T> {
    /// The answer, known now.
    pub fn ready(value: T) -> Answer<T> {
        Answer(Inner::Ready(value))
    }

    /// The answer, once `future` resolves (a lookup in a database, an HTTP call). The
    /// broker stops waiting when the hook budget runs out.
    pub fn later(future: impl Future<Output = T> + Send + 'static) -> Answer<T> {
        Answer(Inner::Later(Box::pin(future)))
    }

    /// True when the answer is known now.
    pub fn is_ready(&self) -> bool {
        matches!(self.0, Inner::Ready(_))
    }
}

impl<T> From<T> for Answer<T> {
    fn from(value: T) -> Answer<T> {
        Answer::ready(value)
    }
}
