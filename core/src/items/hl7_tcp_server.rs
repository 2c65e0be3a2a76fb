//! A TCP service's MLLP server on one shard: binding its port (unless the item is
//! disabled), and supervising the server through disable, enable, restart and shutdown,
//! binding it again (per the restart policy when binding fails). What the server does
//! with each frame is [`TcpServiceHandler`]'s (`items::hl7_tcp_service`).

use std::rc::Rc;
use std::time::Duration;

use hie_net::{MllpServer, ServerConfig, StayConnected};

use crate::config;
use crate::engine::control::ItemState;
use crate::engine::plan::PlannedItem;
use crate::engine::runtime::{Phase, Shard};
use crate::engine::supervise::RestartBudget;
use crate::envelope::ItemId;
use crate::items::error_spell::BindAlert;
use crate::items::hl7_tcp_service::TcpServiceHandler;
use crate::items::kinds::hl7_tcp_service::TcpServicePlan;

/// Starts TCP service `item` on `shard`: binds its port (unless it is disabled) and
/// returns its supervisor task; `None` when the port cannot be bound, which fails the
/// start.
pub(crate) fn start_tcp_service(
    shard: &Rc<Shard>,
    item: &PlannedItem,
    plan: &TcpServicePlan,
) -> Option<glommio::Task<()>> {
    let id = item.id;
    let state = shard.shared().start_state(id);
    shard.set_state(id, state);
    // A service disabled (in the production or by an operator) binds when it is enabled.
    let server = if state == ItemState::Disabled {
        None
    } else {
        match bind(shard, id, plan) {
            Ok(server) => Some(server),
            Err(e) => {
                shard.shared().fail(format!("item {}: {e}", item.name));
                shard.set_state(id, ItemState::Failed);
                return None;
            }
        }
    };
    if let Some(server) = &server {
        tracing::info!(item = %item.name, shard = shard.index(), address = %server.local_addr(), "listening");
    }
    Some(glommio::spawn_local(supervise_tcp_service(
        Rc::clone(shard),
        id,
        plan.clone(),
        server,
    )))
}

fn server_config(plan: &TcpServicePlan) -> ServerConfig {
    let s = &plan.settings;
    ServerConfig {
        local_address: plan.listen.ip(),
        port: plan.listen.port(),
        read_timeout: (s.read_timeout_s > 0)
            .then(|| Duration::from_secs(u64::from(s.read_timeout_s))),
        stay_connected: match s.stay_connected {
            config::StayConnected::Forever => StayConnected::Forever,
            config::StayConnected::AfterEachMessage => StayConnected::AfterEachMessage,
            config::StayConnected::IdleSeconds(n) => {
                StayConnected::Idle(Duration::from_secs(u64::from(n)))
            }
        },
        connections: plan.connections.clone(),
        frame_bytes_max: s.max_message_size as usize,
        inbound_budget: plan.inbound_budget.clone(),
        ..ServerConfig::default()
    }
}

fn bind(
    shard: &Rc<Shard>,
    item: ItemId,
    plan: &TcpServicePlan,
) -> Result<MllpServer<TcpServiceHandler>, hie_net::MllpError> {
    let handler = TcpServiceHandler::new(Rc::clone(shard), item, &plan.settings);
    MllpServer::bind(server_config(plan), handler)
}

/// Runs a TCP service's server (`None`: not bound yet), stopping it for disable, restart
/// and shutdown and binding it again (per the restart policy when binding fails) for
/// enable and restart.
async fn supervise_tcp_service(
    shard: Rc<Shard>,
    item: ItemId,
    plan: TcpServicePlan,
    mut server: Option<MllpServer<TcpServiceHandler>>,
) {
    let mut restarts = RestartBudget::new(shard.plan().item(item).restart);
    let mut alert = BindAlert::new(&shard, item, plan.settings.alert_grace_s);
    loop {
        if shard.phase() >= Phase::StopServices {
            return;
        }
        let current = match server.take() {
            Some(server) => server,
            None => {
                // Wait to be (re)enabled.
                futures_lite::future::or(
                    async {
                        shard
                            .states()
                            .wait_until(item, |s| {
                                matches!(s, ItemState::Running | ItemState::Paused)
                            })
                            .await;
                    },
                    shard.until_phase(Phase::StopServices),
                )
                .await;
                if shard.phase() >= Phase::StopServices {
                    return;
                }
                match bind(&shard, item, &plan) {
                    Ok(server) => {
                        alert.bound(&shard, item);
                        server
                    }
                    Err(e) => {
                        let retried = restarts.failed(&shard, item);
                        alert.failed(&shard, item, &e, retried);
                        if retried {
                            tracing::warn!(item = %shard.plan().item(item).name, "{e}; retrying in {:?}", restarts.delay());
                            glommio::timer::sleep(restarts.delay()).await;
                        } else {
                            tracing::error!(item = %shard.plan().item(item).name, "{e}; item failed");
                            shard.set_state(item, ItemState::Failed);
                        }
                        continue;
                    }
                }
            }
        };
        restarts.started();
        let handle = current.handle();
        let restarts_at_bind = shard.states().restarts(item);
        let watcher = glommio::spawn_local({
            let shard = Rc::clone(&shard);
            async move {
                loop {
                    futures_lite::future::or(
                        shard.states().changed(item),
                        shard.until_phase(Phase::StopServices),
                    )
                    .await;
                    let state = shard.states().get(item);
                    if shard.phase() >= Phase::StopServices
                        || !matches!(state, ItemState::Running | ItemState::Paused)
                        || shard.states().restarts(item) != restarts_at_bind
                    {
                        handle.stop();
                        return;
                    }
                }
            }
        });
        if let Err(e) = current.run().await {
            tracing::error!(item = %shard.plan().item(item).name, "server stopped: {e}");
        }
        watcher.await;
    }
}
