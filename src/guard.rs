//! One guarded dispatch for the supervised actors (the router and the persistence
//! actor). Every message they handle runs through [`dispatch`]: a panic in the handler
//! is caught, logged, answered with the message's failure reply and stops the actor, so
//! that its `Supervisor` restarts it (`Supervised::restarting` then resets whatever was
//! transient). Nothing unwinds out of the supervisor.

use std::panic::{catch_unwind, AssertUnwindSafe};

use actix::prelude::*;
use tracing::error;

/// An actor whose handlers all run through [`dispatch`].
pub trait Guarded: Actor<Context = Context<Self>> + Supervised {
    /// The actor's name in logs.
    const ACTOR: &'static str;

    /// With the `fault-injection` feature: true (once) when a test armed a fault for
    /// the handler `name`. Always false otherwise.
    fn take_fault(&mut self, _name: &'static str) -> bool {
        false
    }
}

/// A message of a [`Guarded`] actor: its handler body and its reply when that failed.
pub trait Call<A: Guarded>: Message + Sized {
    /// The handler's name in logs, and the name a test arms a fault for.
    const NAME: &'static str;

    /// Before the handler runs (and before an armed fault fires): a message whose sender
    /// cannot be told of a failure leaves a copy with the actor (what cannot be copied,
    /// such as a reply channel, moves to it), for `restarting` to handle again. Nothing
    /// by default.
    fn keep(&mut self, _act: &mut A) {}

    /// The handler body.
    fn call(self, act: &mut A, ctx: &mut Context<A>) -> Self::Result;

    /// The reply when the handler failed: it must tell the sender that nothing was
    /// done (no acknowledgement, a refusal), never that it succeeded.
    fn failed() -> Self::Result;
}

/// Runs `msg`'s handler; a panic stops the actor (the supervisor restarts it) and
/// answers [`Call::failed`].
#[inline]
pub fn dispatch<A: Guarded, M: Call<A>>(
    act: &mut A,
    mut msg: M,
    ctx: &mut Context<A>,
) -> M::Result {
    msg.keep(act);
    let armed = act.take_fault(M::NAME);
    let run = AssertUnwindSafe(|| {
        if armed {
            panic!("injected fault in {} {}", A::ACTOR, M::NAME);
        }
        msg.call(act, ctx)
    });
    match catch_unwind(run) {
        Ok(reply) => reply,
        Err(_) => {
            error!(
                actor = A::ACTOR,
                handler = M::NAME,
                "handler failed; restarting the actor"
            );
            ctx.stop();
            M::failed()
        }
    }
}

/// Routes every message of `$actor` that implements [`Call`] through [`dispatch`].
macro_rules! guarded_handlers {
    ($actor:ty) => {
        impl<M> ::actix::Handler<M> for $actor
        where
            M: $crate::guard::Call<$actor>,
            M::Result: ::actix::dev::MessageResponse<$actor, M>,
        {
            type Result = M::Result;

            #[inline]
            fn handle(&mut self, msg: M, ctx: &mut ::actix::Context<Self>) -> M::Result {
                $crate::guard::dispatch(self, msg, ctx)
            }
        }
    };
}
pub(crate) use guarded_handlers;

/// Implements [`Call`] for messages whose handler is a method of the actor:
/// `calls!(Router { Register => on_register, failed None; ... })`.
macro_rules! calls {
    ($actor:ty { $($msg:ident => $method:ident, failed $failed:expr;)* }) => {
        $(
            impl $crate::guard::Call<$actor> for $msg {
                const NAME: &'static str = stringify!($msg);

                #[inline]
                fn call(self, act: &mut $actor, ctx: &mut ::actix::Context<$actor>) -> Self::Result {
                    act.$method(self, ctx)
                }

                fn failed() -> Self::Result {
                    $failed
                }
            }
        )*
    };
}
pub(crate) use calls;

/// Test-only faults (`fault-injection` feature): handler names armed to panic once.
#[derive(Debug, Default)]
pub struct Faults {
    #[cfg(feature = "fault-injection")]
    armed: Vec<String>,
}

impl Faults {
    /// Arms one panic in the next run of the handler `name`.
    #[cfg(feature = "fault-injection")]
    pub fn arm(&mut self, name: &str) {
        self.armed.push(name.to_owned());
    }

    /// True (once) when `name` was armed.
    pub fn take(&mut self, _name: &str) -> bool {
        #[cfg(feature = "fault-injection")]
        if let Some(i) = self.armed.iter().position(|n| n == _name) {
            self.armed.swap_remove(i);
            return true;
        }
        false
    }
}
