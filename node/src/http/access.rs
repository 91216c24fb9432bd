//! Object-level access for the node's own event routes: each route that
//! acts on one event looks up its facts — the reporter (the actor of the
//! entry that created it) and the assignee — and asks the matrix
//! (`sentinel_schema::access`) with them, once before the body is read
//! ([`precheck`]) and again under the lock that commits the change
//! ([`checked`]), so an assignment that moved in between is seen.
//!
//! Never does: decide who may do what (that is `sentinel_schema::access`).

use sentinel_http::api::Caller;
use sentinel_http::Problem;
use sentinel_schema::access::{Action, EventFacts};
use sentinel_schema::EventId;

use super::state::ApiState;
use crate::node::Node;
use crate::store::events::Facts;

/// The facts of `event`; 404 when this node does not know it.
pub(crate) fn facts(node: &Node, event: EventId) -> Result<Facts, Problem> {
    node.store()
        .facts(event)?
        .ok_or_else(|| Problem::not_found(format!("no event {event}")))
}

/// The matrix's verdict for `caller` doing `action` on `event`, under the
/// node's lock; the event's facts when allowed.
pub(crate) fn checked(
    node: &Node,
    caller: &Caller,
    event: EventId,
    action: Action,
) -> Result<Facts, Problem> {
    let facts = facts(node, event)?;
    caller.may(
        action,
        Some(EventFacts {
            reporter: facts.reporter.as_deref(),
            assignee: facts.assignee.as_deref(),
        }),
    )?;
    Ok(facts)
}

/// Checks `caller` against `event` before a body is read.
pub(crate) async fn precheck(
    state: &ApiState,
    caller: &Caller,
    event: EventId,
    action: Action,
) -> Result<(), Problem> {
    caller.may(action, None)?;
    let caller = caller.clone();
    state
        .with_node(move |node| checked(node, &caller, event, action).map(|_| ()))
        .await
}
