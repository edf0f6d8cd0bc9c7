//! Text deltas gathered into frames as an answer streams: the first at
//! once, then at most one frame per `WINDOW` (or per `MAX_BYTES` of text),
//! never one per token. A fast stream of tiny chunks would otherwise fill
//! a socket's queue in a fraction of a second and close it as a slow
//! consumer.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long text may wait for the next chunk before it goes out.
const WINDOW: Duration = Duration::from_millis(16);
/// Text that goes out whatever the time.
const MAX_BYTES: usize = 2048;

pub(super) struct Deltas<F: Fn(String)> {
    send: F,
    pending: Mutex<Pending>,
}

struct Pending {
    text: String,
    /// When a frame last went out.
    sent: Option<Instant>,
}

impl<F: Fn(String)> Deltas<F> {
    pub(super) fn new(send: F) -> Deltas<F> {
        Deltas {
            send,
            pending: Mutex::new(Pending {
                text: String::new(),
                sent: None,
            }),
        }
    }

    /// Adds a chunk; sends what is gathered if the window has passed.
    pub(super) fn push(&self, chunk: &str) {
        let ready = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.text.push_str(chunk);
            let due = p.sent.is_none_or(|at| at.elapsed() >= WINDOW) || p.text.len() >= MAX_BYTES;
            if due {
                p.sent = Some(Instant::now());
                Some(std::mem::take(&mut p.text))
            } else {
                None
            }
        };
        if let Some(text) = ready.filter(|t| !t.is_empty()) {
            (self.send)(text);
        }
    }

    /// Sends whatever is still gathered (the answer is complete); the next
    /// answer's first chunk goes out at once again.
    pub(super) fn flush(&self) {
        let text = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.sent = None;
            std::mem::take(&mut p.text)
        };
        if !text.is_empty() {
            (self.send)(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn many_small_chunks_become_few_frames_and_nothing_is_lost() {
        let frames = Arc::new(Mutex::new(Vec::<String>::new()));
        let seen = frames.clone();
        let deltas = Deltas::new(move |text| seen.lock().unwrap().push(text));
        for n in 0..20_000 {
            deltas.push(if n % 2 == 0 { "a" } else { "b" });
        }
        deltas.flush();
        let frames = frames.lock().unwrap();
        assert_eq!(frames.concat(), "ab".repeat(10_000));
        assert_eq!(frames[0], "a", "the first chunk goes out at once");
        assert!(frames.len() < 100, "{} frames for 20 000 chunks", frames.len());
    }
}
