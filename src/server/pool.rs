//! The worker pool: at most `max` small-stack threads run jobs (connections with bytes to
//! process), in the order they became ready; more jobs wait in the queue, never a client's whole
//! session. Threads are started on demand and leave after a minute of idleness, so an idle server
//! holds none.

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

    /// Runs `job` on a worker as soon as one is free.
    pub fn submit(&self, job: J) {
        let mut st = lock(&self.inner.state);
        st.busy += 1;
        st.queue.push_back(job);
        if st.queue.len() > st.idle && st.workers < self.inner.max {
            let inner = Arc::clone(&self.inner);
            let spawned = std::thread::Builder::new()
                .name("worker".into())
                .stack_size(STACK_SIZE)
                .spawn(move || worker(inner));
            match spawned {
                Ok(_) => st.workers += 1,
                // The job waits for a running worker; with none at all it waits for the next try.
                Err(e) => log::error!("event=thread_spawn_failed error={e:?}"),
            }
        } else {
            self.inner.wake.notify_one();
        }
    }

    /// Jobs running or waiting for a worker.
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
    fn at_most_max_threads_and_jobs_wait_their_turn() {
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let gate = Mutex::new(gate_rx);
        let (done_tx, done_rx) = mpsc::channel::<u32>();
        let done = Mutex::new(done_tx);
        let pool = Pool::new(2, move |n: u32| {
            let _ = lock(&gate).recv();
            let _ = lock(&done).send(n);
        });
        for n in 1..=5 {
            pool.submit(n);
        }
        assert_eq!(pool.busy(), 5);
        assert_eq!(pool.workers(), 2, "five jobs, two threads");
        for _ in 0..5 {
            gate_tx.send(()).unwrap();
        }
        let mut got: Vec<u32> = (0..5).map(|_| done_rx.recv().unwrap()).collect();
        got.sort();
        assert_eq!(got, [1, 2, 3, 4, 5]);
        while pool.busy() != 0 {
            std::thread::yield_now();
        }
        assert_eq!(pool.workers(), 2);
    }
}
