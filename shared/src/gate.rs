//! A per-tenant gate in front of the database, inside one isolate.
//!
//! The database caps each tenant's business transactions
//! (`tenant_capacity_policies.max_concurrent`) and refuses the rest at once
//! (`TOO_MANY_CONCURRENT_REQUESTS`). Retrying that refusal costs a round trip
//! to the REST server and the database each time. So an isolate first lets
//! at most `max_concurrent` of a tenant's requests through to the database
//! and keeps the others waiting here, in order, holding no connection and no
//! CPU, for at most a bounded time. The database's cap still decides across
//! isolates; this only keeps one isolate from hammering it.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{select, Either};
use uuid::Uuid;

use crate::providers::Clock;

#[derive(Default)]
struct Gate {
    in_flight: usize,
    waiting: VecDeque<oneshot::Sender<()>>,
}

thread_local! {
    static GATES: RefCell<HashMap<Uuid, Gate>> = RefCell::new(HashMap::new());
}

/// One of a tenant's places; it is handed to the next waiter when dropped.
#[derive(Debug)]
pub struct Permit {
    tenant: Uuid,
}

impl Drop for Permit {
    fn drop(&mut self) {
        GATES.with(|gates| {
            let mut gates = gates.borrow_mut();
            let Some(gate) = gates.get_mut(&self.tenant) else {
                return;
            };
            // Hand the place over to the oldest waiter still waiting.
            while let Some(next) = gate.waiting.pop_front() {
                if next.send(()).is_ok() {
                    return;
                }
            }
            gate.in_flight -= 1;
            if gate.in_flight == 0 {
                gates.remove(&self.tenant);
            }
        });
    }
}

/// Waits, at most `max_wait`, for one of the tenant's `limit` places in this
/// isolate. `None` when the wait ran out.
pub async fn enter(
    tenant: Uuid,
    limit: usize,
    max_wait: Duration,
    clock: &dyn Clock,
) -> Option<Permit> {
    let waiting = GATES.with(|gates| {
        let mut gates = gates.borrow_mut();
        let gate = gates.entry(tenant).or_default();
        if gate.in_flight < limit.max(1) {
            gate.in_flight += 1;
            None
        } else {
            let (tx, rx) = oneshot::channel();
            gate.waiting.push_back(tx);
            Some(rx)
        }
    });
    let Some(turn) = waiting else {
        return Some(Permit { tenant });
    };
    // The turn is polled first: a place handed over as the wait runs out is taken.
    match select(turn, clock.sleep(max_wait)).await {
        Either::Left((Ok(()), _)) => Some(Permit { tenant }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::LocalPool;
    use futures::task::LocalSpawnExt;
    use std::cell::Cell;
    use std::future::Future;
    use std::pin::Pin;
    use std::rc::Rc;

    /// How many of the tenant's requests hold a place or wait, in this isolate.
    fn load(tenant: Uuid) -> (usize, usize) {
        GATES.with(|gates| {
            gates
                .borrow()
                .get(&tenant)
                .map(|g| (g.in_flight, g.waiting.len()))
                .unwrap_or((0, 0))
        })
    }

    /// A clock whose sleeps end only when the test says so.
    #[derive(Clone, Default)]
    struct Manual {
        alarms: Rc<RefCell<Vec<oneshot::Sender<()>>>>,
    }
    impl Manual {
        fn ring_all(&self) {
            for alarm in self.alarms.borrow_mut().drain(..) {
                let _ = alarm.send(());
            }
        }
    }
    impl Clock for Manual {
        fn now_unix_secs(&self) -> i64 {
            0
        }
        fn jitter(&self) -> f64 {
            0.5
        }
        fn sleep(&self, _: Duration) -> Pin<Box<dyn Future<Output = ()>>> {
            let (tx, rx) = oneshot::channel();
            self.alarms.borrow_mut().push(tx);
            Box::pin(async move {
                let _ = rx.await;
            })
        }
    }

    #[test]
    fn places_are_handed_over_in_order_and_tenants_do_not_share() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let clock = Manual::default();
        let mut pool = LocalPool::new();
        let order = Rc::new(RefCell::new(Vec::new()));
        let first = pool
            .run_until(enter(a, 1, Duration::from_secs(1), &clock))
            .unwrap();
        for i in 0..3 {
            let (clock, order) = (clock.clone(), order.clone());
            pool.spawner()
                .spawn_local(async move {
                    let permit = enter(a, 1, Duration::from_secs(1), &clock).await;
                    order.borrow_mut().push((i, permit.is_some()));
                })
                .unwrap();
        }
        pool.run_until_stalled();
        assert_eq!(load(a), (1, 3));
        // Another tenant is never behind tenant A.
        assert!(pool
            .run_until(enter(b, 1, Duration::from_secs(1), &clock))
            .is_some());
        drop(first);
        pool.run_until_stalled();
        assert_eq!(*order.borrow(), vec![(0, true), (1, true), (2, true)]);
        assert_eq!(load(a), (0, 0));
    }

    #[test]
    fn a_wait_that_runs_out_gives_up_its_turn() {
        let a = Uuid::from_u128(3);
        let clock = Manual::default();
        let mut pool = LocalPool::new();
        let held = pool
            .run_until(enter(a, 1, Duration::from_secs(1), &clock))
            .unwrap();
        let gave_up = Rc::new(Cell::new(false));
        {
            let (clock, gave_up) = (clock.clone(), gave_up.clone());
            pool.spawner()
                .spawn_local(async move {
                    gave_up.set(enter(a, 1, Duration::from_secs(1), &clock).await.is_none());
                })
                .unwrap();
        }
        pool.run_until_stalled();
        clock.ring_all();
        pool.run_until_stalled();
        assert!(gave_up.get());
        // The place goes back to the pool, not to the one that left.
        drop(held);
        assert_eq!(load(a), (0, 0));
        assert!(pool
            .run_until(enter(a, 1, Duration::from_secs(1), &clock))
            .is_some());
    }
}
