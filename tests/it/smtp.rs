//! A real SMTP server on loopback for tests (mailin-embedded, in process):
//! records every accepted message with its envelope, and can answer the
//! first DATA with a temporary 451 or every DATA with a permanent 550.
//! mailin's server cannot be stopped; each test's server thread is leaked.

use mailin_embedded::{Handler, Response, Server, response};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Mode {
    #[default]
    Accept,
    /// 451 for the first DATA, then accept.
    TempFailFirst,
    /// 550 for every DATA.
    Reject,
}

/// One accepted message.
#[derive(Clone, Debug)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub raw: Vec<u8>,
}

impl Received {
    pub fn parsed(&self) -> mailparse::ParsedMail<'_> {
        mailparse::parse_mail(&self.raw).unwrap()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        use mailparse::MailHeaderMap;
        self.parsed().headers.get_first_value(name)
    }

    /// The decoded text of the part with this content type.
    pub fn part(&self, mime: &str) -> Option<String> {
        fn find(p: &mailparse::ParsedMail<'_>, mime: &str) -> Option<String> {
            if p.ctype.mimetype == mime {
                return p.get_body().ok();
            }
            p.subparts.iter().find_map(|s| find(s, mime))
        }
        find(&self.parsed(), mime)
    }
}

#[derive(Clone, Default)]
pub struct Sink {
    pub mode: Mode,
    /// Delay before answering DATA (widens the send window in crash tests).
    pub delay: Duration,
    pub data_calls: Arc<AtomicUsize>,
    pub received: Arc<Mutex<Vec<Received>>>,
    from: String,
    to: Vec<String>,
    buf: Vec<u8>,
}

impl Handler for Sink {
    fn helo(&mut self, _ip: IpAddr, _domain: &str) -> Response {
        response::OK
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.from = from.to_owned();
        self.to = to.to_vec();
        self.buf.clear();
        let n = self.data_calls.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        // Refuse in data_start, not data_end: after a refused data_end
        // mailin stays in DATA state and a client's QUIT would hang.
        match self.mode {
            Mode::TempFailFirst if n == 0 => Response::custom(451, "4.3.0 try again later".into()),
            Mode::Reject => Response::custom(550, "5.7.1 rejected by policy".into()),
            Mode::Accept | Mode::TempFailFirst => response::OK,
        }
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.buf.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        self.received.lock().unwrap().push(Received {
            from: self.from.clone(),
            to: self.to.clone(),
            raw: std::mem::take(&mut self.buf),
        });
        response::OK
    }
}

impl Sink {
    pub fn new(mode: Mode) -> Sink {
        Sink {
            mode,
            ..Sink::default()
        }
    }

    pub fn with_delay(mut self, delay: Duration) -> Sink {
        self.delay = delay;
        self
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Starts serving on 127.0.0.1:0 in a leaked thread.
    pub fn start(&self) -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut server = Server::new(self.clone());
        server
            .with_name("smtp.test")
            .with_num_threads(16)
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        addr
    }

    /// Waits until `n` messages have arrived (or the wait runs out).
    pub async fn wait_for(&self, n: usize, wait: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let got = self.received();
            if got.len() >= n || tokio::time::Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
