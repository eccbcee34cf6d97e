//! The timer hyper's HTTP/1 server gets, one per client connection: every sleep it asks for
//! shares the connection's one tokio timer entry.
//!
//! hyper arms a new sleep (its header read timeout, which is also the idle timeout) each time
//! it waits for a request head, and drops it once the head is read. With hyper-util's
//! `TokioTimer` each of those is a new entry in tokio's timer wheel: a wheel insertion and
//! removal per request, and, when the new deadline is the earliest, a wake-up of the I/O
//! driver (an `eventfd` write and one more `epoll_wait`) per request. Here the connection's
//! entry stays registered at the deadline it was first given; a later deadline is only
//! recorded, and the entry is moved when it fires early, once per timeout period at most.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::rt::{Sleep, Timer};

/// A client connection's timer (give each connection its own: sleeps of one timer share one
/// entry, and only the latest one polled is woken).
#[derive(Clone, Debug, Default)]
pub struct ConnTimer {
    entry: Arc<Mutex<Option<Pin<Box<tokio::time::Sleep>>>>>,
}

impl ConnTimer {
    /// A timer with no entry yet.
    pub fn new() -> ConnTimer {
        ConnTimer::default()
    }
}

impl Timer for ConnTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until((tokio::time::Instant::now() + duration).into_std())
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(ConnSleep {
            entry: self.entry.clone(),
            deadline: deadline.into(),
        })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<ConnSleep>() {
            Some(mut sleep) => sleep.deadline = new_deadline.into(),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into()
    }
}

/// One sleep of a [`ConnTimer`].
struct ConnSleep {
    entry: Arc<Mutex<Option<Pin<Box<tokio::time::Sleep>>>>>,
    deadline: tokio::time::Instant,
}

impl Future for ConnSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.deadline;
        if tokio::time::Instant::now() >= deadline {
            return Poll::Ready(());
        }
        let mut entry = self.entry.lock().unwrap_or_else(|p| p.into_inner());
        let sleep = entry.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        // An entry later than this deadline (or one that has fired) is moved to it; an
        // earlier one is left: when it fires, this is polled again and moves it.
        loop {
            if sleep.deadline() > deadline || sleep.is_elapsed() {
                sleep.as_mut().reset(deadline);
            }
            match sleep.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) if sleep.deadline() >= deadline => return Poll::Ready(()),
                Poll::Ready(()) => continue,
            }
        }
    }
}

impl Sleep for ConnSleep {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_sleep_ends_at_its_deadline_however_often_it_is_renewed() {
        let timer = ConnTimer::new();
        let start = tokio::time::Instant::now();
        // As hyper does: a sleep per request head, dropped when the head arrives.
        for _ in 0..5 {
            let sleep = timer.sleep(Duration::from_millis(300));
            let early = tokio::time::timeout(Duration::from_millis(100), sleep).await;
            assert!(early.is_err(), "ended before its deadline");
        }
        let renewed = tokio::time::Instant::now();
        timer.sleep(Duration::from_millis(300)).await;
        let waited = renewed.elapsed();
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_millis(310),
            "{waited:?}"
        );
        assert!(start.elapsed() >= Duration::from_millis(800));
    }

    #[tokio::test(start_paused = true)]
    async fn reset_moves_the_deadline_both_ways() {
        let timer = ConnTimer::new();
        let mut sleep = timer.sleep(Duration::from_millis(500));
        let start = tokio::time::Instant::now();
        timer.reset(&mut sleep, (start + Duration::from_millis(100)).into());
        sleep.as_mut().await;
        let at = start.elapsed();
        assert!(
            at >= Duration::from_millis(100) && at < Duration::from_millis(110),
            "{at:?}"
        );
        let mut sleep = timer.sleep(Duration::from_millis(50));
        let start = tokio::time::Instant::now();
        timer.reset(&mut sleep, (start + Duration::from_millis(400)).into());
        sleep.as_mut().await;
        let at = start.elapsed();
        assert!(
            at >= Duration::from_millis(400) && at < Duration::from_millis(410),
            "{at:?}"
        );
    }
}
