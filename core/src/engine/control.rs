//! Runtime control of items: the commands an operator sends (enable, disable, restart,
//! pause, resume; `hie ctl` sends them as JSON, see `control_server` in the `hie` binary), the state each item instance is in, and the per-shard watch that wakes
//! workers when their item's state changes.
//!
//! Commands reach every shard as shard calls ([`super::shard_call`], [`super::admin`]);
//! each shard applies a command to its own instances of the item ([`apply`]). Nothing here locks on the data path: a worker reads its state
//! from a `Cell` on its own shard.

use std::cell::Cell;
use std::future::poll_fn;
use std::task::Poll;

use serde::Serialize;

use crate::engine::runtime::Shard;
use crate::envelope::ItemId;
use crate::notify::WaitList;

/// What an operator can ask of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemCommand {
    /// Start a disabled item.
    Enable,
    /// Stop the item; its queue keeps its messages (they wait for it, as in IRIS).
    Disable,
    /// Stop and start again (re-reads nothing: the plan is fixed for a run).
    Restart,
    /// Stop taking work but keep connections and queues (a paused service stops reading
    /// its sockets, so TCP flow control pushes back on the senders).
    Pause,
    /// Undo `Pause`.
    Resume,
}

/// The state of one item instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    /// Not started yet, or stopped at shutdown.
    Stopped,
    Running,
    Paused,
    /// Disabled by an operator or by ReplyCodeActions `D`.
    Disabled,
    /// Ended with an error and not restarted (restart policy exhausted or `never`).
    Failed,
}

/// One item's state on one shard.
#[derive(Debug)]
struct StateSlot {
    state: Cell<ItemState>,
    /// Bumped on every change, so a restart is seen even if the state ends where it began.
    generation: Cell<u64>,
    /// Restart requests: a worker that saw a different count restarts.
    restarts: Cell<u64>,
}

/// The states of the item instances on one shard, one slot per item keyed by its stable
/// [`ItemId`] (as [`crate::engine::slots::ItemSlots`]), with wakers for workers that wait
/// for a change (a paused worker, a disabled one waiting to be enabled).
#[derive(Debug)]
pub struct StateWatch {
    items: Vec<StateSlot>,
    waiters: WaitList<ItemId>,
}

impl StateWatch {
    /// Every item starts `Stopped`.
    pub fn new(items: usize) -> Self {
        let slot = || StateSlot {
            state: Cell::new(ItemState::Stopped),
            generation: Cell::new(0),
            restarts: Cell::new(0),
        };
        StateWatch {
            items: (0..items).map(|_| slot()).collect(),
            waiters: WaitList::new(),
        }
    }

    fn slot(&self, item: ItemId) -> &StateSlot {
        &self.items[item as usize]
    }

    pub fn get(&self, item: ItemId) -> ItemState {
        self.slot(item).state.get()
    }

    pub fn generation(&self, item: ItemId) -> u64 {
        self.slot(item).generation.get()
    }

    /// Restart requests so far for `item`.
    pub fn restarts(&self, item: ItemId) -> u64 {
        self.slot(item).restarts.get()
    }

    /// Asks the workers of `item` to restart (close connections, rebind) and wakes them.
    pub fn request_restart(&self, item: ItemId) {
        let restarts = &self.slot(item).restarts;
        restarts.set(restarts.get() + 1);
        self.set(item, self.get(item));
    }

    /// Sets the state and wakes every task waiting on this item.
    pub fn set(&self, item: ItemId, state: ItemState) {
        let slot = self.slot(item);
        slot.state.set(state);
        slot.generation.set(slot.generation.get() + 1);
        self.waiters.wake_where(|waiting_on| waiting_on == item);
    }

    /// Waits until `item`'s state satisfies `done`; returns that state.
    pub async fn wait_until(&self, item: ItemId, done: impl Fn(ItemState) -> bool) -> ItemState {
        let mut parked = self.waiters.parked();
        poll_fn(|cx| {
            let state = self.get(item);
            if done(state) {
                Poll::Ready(state)
            } else {
                parked.park(item, cx.waker());
                Poll::Pending
            }
        })
        .await
    }

    /// Waits until `item`'s state changes from what it is now.
    pub async fn changed(&self, item: ItemId) {
        let start = self.generation(item);
        let mut parked = self.waiters.parked();
        poll_fn(|cx| {
            if self.generation(item) != start {
                Poll::Ready(())
            } else {
                parked.park(item, cx.waker());
                Poll::Pending
            }
        })
        .await
    }
}

/// Applies an operator's command to this shard's instances of `item`.
pub fn apply(shard: &Shard, item: ItemId, command: ItemCommand) {
    let planned = shard.plan().item(item);
    if !planned.shards.contains(&shard.index()) {
        return;
    }
    let states = shard.states();
    let state = states.get(item);
    tracing::info!(item = %planned.name, shard = shard.index(), ?command, ?state, "control");
    match command {
        ItemCommand::Enable => {
            if matches!(
                state,
                ItemState::Disabled | ItemState::Failed | ItemState::Stopped
            ) {
                shard.set_state(item, ItemState::Running);
            }
        }
        ItemCommand::Disable => shard.set_state(item, ItemState::Disabled),
        ItemCommand::Pause => {
            if state == ItemState::Running {
                shard.set_state(item, ItemState::Paused);
            }
        }
        ItemCommand::Resume => {
            if state == ItemState::Paused {
                shard.set_state(item, ItemState::Running);
            }
        }
        ItemCommand::Restart => {
            let c = &shard.counters(item).restarts;
            c.set(c.get() + 1);
            shard.set_state(item, ItemState::Running);
            states.request_restart(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glommio::LocalExecutor;
    use std::rc::Rc;
    use std::time::Duration;

    #[test]
    fn a_paused_worker_resumes_when_its_item_runs_again() {
        LocalExecutor::default().run(async {
            let watch = Rc::new(StateWatch::new(2));
            watch.set(1, ItemState::Paused);
            let waiter = glommio::spawn_local({
                let watch = Rc::clone(&watch);
                async move { watch.wait_until(1, |s| s == ItemState::Running).await }
            });
            glommio::timer::sleep(Duration::from_millis(2)).await;
            watch.set(0, ItemState::Running);
            glommio::timer::sleep(Duration::from_millis(2)).await;
            assert_eq!(
                watch.waiters.len(),
                1,
                "another item's change does not end its wait"
            );
            watch.set(1, ItemState::Running);
            assert_eq!(waiter.await, ItemState::Running);
        });
    }

    #[test]
    fn changed_sees_a_restart_that_ends_in_the_same_state() {
        LocalExecutor::default().run(async {
            let watch = Rc::new(StateWatch::new(1));
            watch.set(0, ItemState::Running);
            let waiter = glommio::spawn_local({
                let watch = Rc::clone(&watch);
                async move { watch.changed(0).await }
            });
            glommio::timer::sleep(Duration::from_millis(2)).await;
            watch.set(0, ItemState::Running);
            waiter.await;
        });
    }

    #[test]
    fn a_state_wait_that_loses_a_race_leaves_no_waker_behind() {
        LocalExecutor::default().run(async {
            let watch = StateWatch::new(1);
            for _ in 0..70_000 {
                futures_lite::future::or(watch.changed(0), futures_lite::future::yield_now()).await;
                futures_lite::future::or(
                    async {
                        watch.wait_until(0, |s| s == ItemState::Running).await;
                    },
                    futures_lite::future::yield_now(),
                )
                .await;
            }
            assert_eq!(watch.waiters.len(), 0);
        });
    }
}
