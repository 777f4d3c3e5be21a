//! [`Authorizer`]: who may publish to, subscribe to and receive which topics.

use super::{Answer, ClientInfo};

/// What a client asks to do with a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Publish to a topic name (also the will, when it is published).
    Publish,
    /// Subscribe to a topic filter (as written, `$share/{group}/` included).
    Subscribe,
    /// Be delivered a message published to a topic name (checked for each message,
    /// retained ones included, before it enters the client's queue).
    Receive,
}

/// An [`Authorizer`]'s verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Refuse: SUBACK 0x87 (3.1.1: 0x80) for a filter; PUBACK/PUBREC 0x87 for a 5.0
    /// QoS 1/2 publish, otherwise the publish is acknowledged and dropped (as 3.1.1
    /// allows); a message the client may not receive is not delivered to it.
    Deny,
}

/// Decides what each client may do. Called for every PUBLISH (before the interceptor
/// hooks), every filter of every SUBSCRIBE and every message delivered, so a
/// synchronous answer ([`Answer::ready`]) should be cheap; slow answers
/// ([`Answer::later`]) hold up only the client concerned, never the router, and are
/// denied when the hook budget runs out.
///
/// ```
/// use starling::hooks::{Access, Answer, Authorizer, ClientInfo, Decision};
///
/// /// Each client may only touch topics under `devices/{client id}/`.
/// struct OwnTopics;
///
/// impl Authorizer for OwnTopics {
///     fn authorize(&self, client: &ClientInfo, _access: Access, topic: &str) -> Answer<Decision> {
///         let own = format!("devices/{}/", client.client_id);
///         Answer::ready(match topic.starts_with(&own) {
///             true => Decision::Allow,
///             false => Decision::Deny,
///         })
///     }
/// }
///
/// let alice = ClientInfo::new("alice".into());
/// assert!(OwnTopics.authorize(&alice, Access::Publish, "devices/alice/temp").is_ready());
/// ```
pub trait Authorizer: Send + Sync + 'static {
    /// May `client` do `access` on `topic` (a topic name, or a filter for
    /// [`Access::Subscribe`])?
    fn authorize(&self, client: &ClientInfo, access: Access, topic: &str) -> Answer<Decision>;
}

impl<T: Authorizer + ?Sized> Authorizer for std::sync::Arc<T> {
    fn authorize(&self, client: &ClientInfo, access: Access, topic: &str) -> Answer<Decision> {
        (**self).authorize(client, access, topic)
    }
}
