//! The worker pool: at most `max` small-stack threads run jobs (connections with bytes to
//! process), in the order they became ready; more jobs wait in the queue, never a client's whole
//! session. Threads are started on demand and leave after a minute of idleness, so an idle server
//! holds none. A job that must wait for its client to take what it writes (a slow reader of a
//! large FETCH) says so with a [`Blocker`]: while it waits, another thread may serve the queue, up
//! to [`SPARE_FACTOR`] times `max` threads in all, so slow readers never starve the rest.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Stack of a session thread. Sessions keep their buffers on the heap.
pub const STACK_SIZE: usize = 128 * 1024;
const IDLE_EXIT: Duration = Duration::from_secs(60);

/// Threads in all, as a multiple of `max`, when some of them wait on slow readers.
pub const SPARE_FACTOR: usize = 8;

type Handler<J> = dyn Fn(J, &Arc<Blocker>) + Send + Sync;

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
    /// Workers waiting for a slow reader (see [`Blocker`]).
    blocked: usize,
}

/// A worker's way to say that its job now waits for a client to read.
pub struct Blocker {
    mark: Box<dyn Fn(bool) + Send + Sync>,
}

/// Held while a job waits on a slow reader; dropping it counts the worker as working again.
pub struct BlockGuard<'a>(&'a Blocker);

impl Blocker {
    pub fn enter(&self) -> BlockGuard<'_> {
        (self.mark)(true);
        BlockGuard(self)
    }

    /// A blocker that does nothing (a connection run outside a pool).
    pub fn none() -> Blocker {
        Blocker { mark: Box::new(|_| {}) }
    }
}

impl Drop for BlockGuard<'_> {
    fn drop(&mut self) {
        (self.0.mark)(false);
    }
}

impl<J: Send + 'static> Pool<J> {
    pub fn new(max: usize, handler: impl Fn(J, &Arc<Blocker>) + Send + Sync + 'static) -> Pool<J> {
        Pool {
            inner: Arc::new(Inner {
                max,
                state: Mutex::new(State { queue: VecDeque::new(), busy: 0, idle: 0, workers: 0, blocked: 0 }),
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
        if !spawn_if_needed(&self.inner, &mut st) {
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

/// Starts a worker when jobs wait, none is idle, fewer than `max` are working (not waiting on slow
/// readers) and the spare allowance is not used up. True when one was started.
fn spawn_if_needed<J: Send + 'static>(inner: &Arc<Inner<J>>, st: &mut State<J>) -> bool {
    let working = st.workers - st.blocked.min(st.workers);
    if st.queue.len() <= st.idle || working >= inner.max || st.workers >= inner.max * SPARE_FACTOR {
        return false;
    }
    let i = Arc::clone(inner);
    match std::thread::Builder::new().name("worker".into()).stack_size(STACK_SIZE).spawn(move || worker(i)) {
        Ok(_) => {
            st.workers += 1;
            true
        }
        // The job waits for a running worker; with none at all it waits for the next try.
        Err(e) => {
            log::error!("event=thread_spawn_failed error={e:?}");
            false
        }
    }
}

fn worker<J: Send + 'static>(inner: Arc<Inner<J>>) {
    let blocker = {
        let weak = Arc::downgrade(&inner);
        Arc::new(Blocker {
            mark: Box::new(move |on| {
                let Some(inner) = weak.upgrade() else { return };
                let mut st = lock(&inner.state);
                if on {
                    st.blocked += 1;
                    spawn_if_needed(&inner, &mut st);
                } else {
                    st.blocked = st.blocked.saturating_sub(1);
                }
            }),
        })
    };
    let mut st = lock(&inner.state);
    loop {
        if let Some(job) = st.queue.pop_front() {
            drop(st);
            (inner.handler)(job, &blocker);
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
        let pool = Pool::new(2, move |n: u32, _: &Arc<Blocker>| {
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

    #[test]
    fn a_job_waiting_on_a_slow_reader_lets_another_thread_serve() {
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let gate = Mutex::new(gate_rx);
        let (done_tx, done_rx) = mpsc::channel::<u32>();
        let done = Mutex::new(done_tx);
        let pool = Pool::new(1, move |n: u32, b: &Arc<Blocker>| {
            if n == 1 {
                let _waiting = b.enter();
                let _ = lock(&gate).recv();
            }
            let _ = lock(&done).send(n);
        });
        pool.submit(1);
        while pool.workers() == 0 {
            std::thread::yield_now();
        }
        pool.submit(2);
        assert_eq!(
            done_rx.recv_timeout(std::time::Duration::from_secs(5)),
            Ok(2),
            "job 2 ran while job 1 waited on its reader"
        );
        gate_tx.send(()).unwrap();
        assert_eq!(done_rx.recv().unwrap(), 1);
        assert_eq!(pool.workers(), 2, "one spare thread, for the time of the wait");
    }
}
