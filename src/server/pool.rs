//! The bounded worker pool: at most `max` sessions run at once, each on its
//! own small-stack thread with blocking I/O. Threads are started on demand
//! and leave after a minute of idleness, so an idle server holds none.
//! When every slot is busy, `try_submit` gives the job back at once so the
//! acceptor can answer "too busy" instead of queueing (the acceptor never waits).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Stack of a session thread. Sessions keep their buffers on the heap.
pub const STACK_SIZE: usize = 128 * 1024;
const IDLE_EXIT: Duration = Duration::from_secs(60);

type Handler<J> = dyn Fn(J) + Send + Sync;

pub struct Pool<J: Send + 'static> {
    inner: Arc<Inner<J>>,
}

struct Inner<J> {
    max: usize,
    state: Mutex<State<J>>,
    wake: Condvar,
    handler: Box<Handler<J>>,
}

struct State<J> {
    queue: VecDeque<J>,
    busy: usize,
    idle: usize,
    workers: usize,
}

impl<J: Send + 'static> Pool<J> {
    pub fn new(max: usize, handler: impl Fn(J) + Send + Sync + 'static) -> Pool<J> {
        Pool {
            inner: Arc::new(Inner {
                max,
                state: Mutex::new(State { queue: VecDeque::new(), busy: 0, idle: 0, workers: 0 }),
                wake: Condvar::new(),
                handler: Box::new(handler),
            }),
        }
    }

    /// Runs `job` on a worker, or gives it back when all `max` slots are busy
    /// or no thread can be started.
    pub fn try_submit(&self, job: J) -> Result<(), J> {
        let mut st = lock(&self.inner.state);
        if st.busy >= self.inner.max {
            return Err(job);
        }
        st.busy += 1;
        st.queue.push_back(job);
        if st.queue.len() > st.idle {
            let inner = Arc::clone(&self.inner);
            let spawned = std::thread::Builder::new()
                .name("session".into())
                .stack_size(STACK_SIZE)
                .spawn(move || worker(inner));
            match spawned {
                Ok(_) => st.workers += 1,
                Err(e) => {
                    log::error!("event=thread_spawn_failed error={e:?}");
                    st.busy -= 1;
                    return st.queue.pop_back().map_or(Ok(()), Err);
                }
            }
        } else {
            self.inner.wake.notify_one();
        }
        Ok(())
    }

    /// Sessions running or waiting to start.
    pub fn busy(&self) -> usize {
        lock(&self.inner.state).busy
    }

    /// Worker threads alive (busy or idle).
    pub fn workers(&self) -> usize {
        lock(&self.inner.state).workers
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A session that panicked cannot leave the counters half-updated (they are
    // changed only under this lock, outside the handler), so poisoning is ignored.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn worker<J>(inner: Arc<Inner<J>>) {
    let mut st = lock(&inner.state);
    loop {
        if let Some(job) = st.queue.pop_front() {
            drop(st);
            (inner.handler)(job);
            st = lock(&inner.state);
            st.busy -= 1;
            continue;
        }
        st.idle += 1;
        let (guard, timeout) = inner.wake.wait_timeout(st, IDLE_EXIT).unwrap_or_else(|p| p.into_inner());
        st = guard;
        st.idle -= 1;
        if timeout.timed_out() && st.queue.is_empty() {
            st.workers -= 1;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn bounded_and_reuses_threads() {
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let gate = Mutex::new(gate_rx);
        let (done_tx, done_rx) = mpsc::channel::<u32>();
        let done = Mutex::new(done_tx);
        let pool = Pool::new(2, move |n: u32| {
            let _ = lock(&gate).recv();
            let _ = lock(&done).send(n);
        });
        assert!(pool.try_submit(1).is_ok());
        assert!(pool.try_submit(2).is_ok());
        assert_eq!(pool.try_submit(3), Err(3), "third job must be refused at once");
        assert_eq!(pool.busy(), 2);
        gate_tx.send(()).unwrap();
        gate_tx.send(()).unwrap();
        let mut got = [done_rx.recv().unwrap(), done_rx.recv().unwrap()];
        got.sort();
        assert_eq!(got, [1, 2]);
        // Both finished: slots free again, and the workers are reused.
        while pool.busy() != 0 {
            std::thread::yield_now();
        }
        assert!(pool.try_submit(4).is_ok());
        gate_tx.send(()).unwrap();
        assert_eq!(done_rx.recv().unwrap(), 4);
        assert_eq!(pool.workers(), 2);
    }
}
