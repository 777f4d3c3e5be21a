//! Session loads that run off the persistence actor's thread (a store that reads over
//! the network, `Store::session_reader`). While one client's load runs, the ops for that
//! client wait here: the load reads what was written before it, its own `then` ops
//! follow it, and what came meanwhile follows those, in arrival order. Other clients'
//! ops go on being committed; their keys are disjoint, so the order between clients
//! does not matter. Retained messages belong to no client and never wait.

use ahash::AHashMap as HashMap;
use tokio::sync::oneshot;

use super::messages::LoadSession;
use super::store::Op;
use crate::message::ClientId;

/// What waits for one client's load.
#[derive(Default)]
struct Parked {
    ops: Vec<Op>,
    /// Waiters of batches whose ops for this client (and no other loading one) wait.
    waiters: Vec<oneshot::Sender<()>>,
    /// Further loads of the same client, in order.
    loads: Vec<LoadSession>,
}

/// The loads running, and what waits for them.
#[derive(Default)]
pub(super) struct Loads {
    by_client: HashMap<ClientId, Parked>,
    /// Waiters of batches with ops for several loading clients: each is released once
    /// the last of those loads is done.
    spanning: Vec<Spanning>,
}

/// The waiter of a batch whose ops wait for several loads.
struct Spanning {
    /// The loading clients it still waits for.
    clients: Vec<ClientId>,
    done: oneshot::Sender<()>,
}

/// What a finished load releases.
pub(super) struct Released {
    pub ops: Vec<Op>,
    pub waiters: Vec<oneshot::Sender<()>>,
    pub loads: Vec<LoadSession>,
}

impl Loads {
    pub fn is_empty(&self) -> bool {
        self.by_client.is_empty()
    }

    pub fn is_loading(&self, client: &str) -> bool {
        self.by_client.contains_key(client)
    }

    /// A load of `client` starts.
    pub fn start(&mut self, client: ClientId) {
        self.by_client.entry(client).or_default();
    }

    /// Another load of a client already loading waits for the first.
    pub fn park_load(&mut self, load: LoadSession) {
        let parked = self.by_client.entry(load.client_id.clone()).or_default();
        parked.loads.push(load);
    }

    /// Splits a batch: the ops of loading clients wait; the rest, with the batch's
    /// waiter if none of its ops wait, is returned to be committed now.
    pub fn split(
        &mut self,
        ops: Vec<Op>,
        done: Option<oneshot::Sender<()>>,
    ) -> (Vec<Op>, Option<oneshot::Sender<()>>) {
        let mut now = Vec::with_capacity(ops.len());
        let mut waited_on: Vec<ClientId> = Vec::new();
        for op in ops {
            let parked = op.client_id().and_then(|c| self.by_client.get_key_value(c));
            let Some((client, _)) = parked else {
                now.push(op);
                continue;
            };
            let client = client.clone();
            if let Some(parked) = self.by_client.get_mut(&client) {
                parked.ops.push(op);
            }
            if !waited_on.contains(&client) {
                waited_on.push(client);
            }
        }
        if waited_on.is_empty() {
            return (now, done);
        }
        if let Some(done) = done {
            match &waited_on[..] {
                [client] => match self.by_client.get_mut(client) {
                    Some(parked) => parked.waiters.push(done),
                    None => drop(done),
                },
                _ => self.spanning.push(Spanning {
                    clients: waited_on,
                    done,
                }),
            }
        }
        (now, None)
    }

    /// The load of `client` is done: what waited for it, and the waiters of batches
    /// that spanned several loads of which this was the last.
    pub fn finish(&mut self, client: &ClientId) -> Option<Released> {
        let parked = self.by_client.remove(client)?;
        let mut waiters = parked.waiters;
        let mut i = 0;
        while i < self.spanning.len() {
            let spanning = &mut self.spanning[i];
            spanning.clients.retain(|c| c != client);
            if spanning.clients.is_empty() {
                waiters.push(self.spanning.swap_remove(i).done);
            } else {
                i += 1;
            }
        }
        Some(Released {
            ops: parked.ops,
            waiters,
            loads: parked.loads,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delete(c: &str) -> Op {
        Op::DeleteSession {
            client_id: c.into(),
        }
    }

    #[test]
    fn only_the_loading_clients_ops_wait_with_their_waiter() {
        let mut loads = Loads::default();
        loads.start("x".into());
        let (tx, mut rx) = oneshot::channel();
        let (now, done) = loads.split(vec![delete("y"), delete("x"), delete("z")], Some(tx));
        assert_eq!(now, vec![delete("y"), delete("z")]);
        assert!(done.is_none(), "the waiter waits for the parked op too");
        let (now, done) = loads.split(vec![delete("y")], None);
        assert_eq!((now, done.is_none()), (vec![delete("y")], true));
        let released = loads.finish(&"x".into()).expect("x was loading");
        assert_eq!(released.ops, vec![delete("x")]);
        assert_eq!(released.waiters.len(), 1);
        assert!(rx.try_recv().is_err(), "not resolved by finishing alone");
        assert!(loads.is_empty());
    }

    #[test]
    fn a_batch_spanning_two_loads_waits_for_both() {
        let mut loads = Loads::default();
        loads.start("x".into());
        loads.start("y".into());
        let (tx, _rx) = oneshot::channel();
        let (now, _) = loads.split(vec![delete("x"), delete("y")], Some(tx));
        assert!(now.is_empty());
        let first = loads.finish(&"x".into()).unwrap();
        assert!(first.waiters.is_empty(), "y's part still waits");
        let second = loads.finish(&"y".into()).unwrap();
        assert_eq!(second.waiters.len(), 1);
        assert_eq!(second.ops, vec![delete("y")]);
    }

    #[test]
    fn a_spanning_batch_is_released_with_its_own_loads_while_others_start() {
        let mut loads = Loads::default();
        loads.start("x".into());
        loads.start("y".into());
        let (tx, _rx) = oneshot::channel();
        let (_, done) = loads.split(vec![delete("x"), delete("y")], Some(tx));
        assert!(done.is_none());
        // Loads of other clients keep starting: they must not hold the batch back.
        loads.start("z".into());
        assert!(loads.finish(&"x".into()).unwrap().waiters.is_empty());
        loads.start("w".into());
        let released = loads.finish(&"y".into()).unwrap();
        assert_eq!(
            released.waiters.len(),
            1,
            "released with y, z and w still loading"
        );
        assert!(!loads.is_empty());
    }
}
