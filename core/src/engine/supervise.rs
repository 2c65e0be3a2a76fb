//! Supervision of a shard's routers and operations: starting each instance, and starting
//! it again after a failure as the item's restart policy says ([`RestartBudget`], which a
//! TCP service that cannot bind its port uses too).
//!
//! A failed instance leaves its messages in its queue; once the policy gives up, the item
//! is `failed` until an operator enables or restarts it.

use std::rc::Rc;
use std::time::Duration;

use crate::config::{RestartPolicy, RestartWhen};
use crate::engine::control::ItemState;
use crate::engine::runtime::{Phase, Shard};
use crate::envelope::{Envelope, ItemId};
use crate::items::WorkerExit;
use crate::items::kind::Worker;
use crate::queue::LocalQueue;

/// Spawns every router and operation instance of this shard, marked running (disabled,
/// for an item disabled in the production: its queue fills until it is enabled), each
/// under its restart policy ([`supervise_worker`]).
pub(crate) fn start_workers(shard: &Rc<Shard>) -> Vec<glommio::Task<()>> {
    let mut workers = Vec::new();
    for item in shard.plan().on_shard(shard.index()) {
        let id = item.id;
        if !item.role.has_queue() {
            continue;
        }
        for instance in item.instances_on(shard.index()) {
            let Some(queue) = shard.queue(id, instance) else {
                continue;
            };
            let shard = Rc::clone(shard);
            workers.push(glommio::spawn_local(supervise_worker(shard, id, queue)));
        }
        shard.set_state(id, shard.shared().start_state(id));
    }
    workers
}

/// Runs one instance of router or operation `item` until it stops, starting it again
/// after a failure as its restart policy says (the same rules and `restarts` counter as
/// a service that cannot bind). A failed instance leaves its messages in its queue; once
/// the policy gives up the item is `failed` until an operator enables or restarts it.
async fn supervise_worker(shard: Rc<Shard>, item: ItemId, queue: Rc<LocalQueue<Envelope>>) {
    let planned = shard.plan().item(item);
    let Some(kind) = planned.host else {
        return;
    };
    let mut restarts = RestartBudget::new(planned.restart);
    loop {
        let worker = Worker {
            shard: Rc::clone(&shard),
            item,
            queue: Rc::clone(&queue),
        };
        let Some(run) = kind.run_worker(worker) else {
            return;
        };
        let exit = run.await;
        let WorkerExit::Failed { reason, worked } = exit else {
            return;
        };
        if worked {
            restarts.started();
        }
        let again = restarts.failed(&shard, item);
        // A failed instance cannot drain its queue: from the drain on, it is not retried.
        if again && shard.phase() < Phase::Drain {
            tracing::warn!(item = %planned.name, shard = shard.index(), "{reason}; restarting in {:?}", restarts.delay());
            let stopping = futures_lite::future::or(
                async {
                    glommio::timer::sleep(restarts.delay()).await;
                    false
                },
                async {
                    shard.until_phase(Phase::Drain).await;
                    true
                },
            )
            .await;
            if !stopping {
                continue;
            }
        }
        tracing::error!(item = %planned.name, shard = shard.index(), "{reason}; item failed");
        shard.set_state(item, ItemState::Failed);
        // An operator's enable or restart starts it again, with one attempt.
        shard.until_running_or_stop(item).await;
        if shard.phase() >= Phase::Stop {
            return;
        }
    }
}

/// One instance's failures in a row, against its restart policy.
#[derive(Debug)]
pub(crate) struct RestartBudget {
    policy: RestartPolicy,
    failures: u32,
}

impl RestartBudget {
    pub(crate) fn new(policy: RestartPolicy) -> Self {
        RestartBudget {
            policy,
            failures: 0,
        }
    }

    /// The instance got going (bound its port, did work): later failures count from 0.
    pub(crate) fn started(&mut self) {
        self.failures = 0;
    }

    /// Counts a failure in the item's `restarts` counter; true when the policy allows
    /// another start (after [`RestartBudget::delay`]): `on_failure` up to `MaxRestarts`
    /// failures in a row, `always` without limit.
    pub(crate) fn failed(&mut self, shard: &Shard, item: ItemId) -> bool {
        self.failures += 1;
        let c = &shard.counters(item).restarts;
        c.set(c.get() + 1);
        match self.policy.when {
            RestartWhen::Never => false,
            RestartWhen::OnFailure => self.failures <= self.policy.max_restarts,
            RestartWhen::Always => true,
        }
    }

    pub(crate) fn delay(&self) -> Duration {
        self.policy.delay
    }
}
