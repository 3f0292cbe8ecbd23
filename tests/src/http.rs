//! Download sources on 127.0.0.1: [`HttpServer`], a plain HTTP/1.1 file server that can
//! misbehave once ([`Mischief`]), and [`serve_tls`], a real `openssl s_server` for HTTPS.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::cmd::ChildGuard;
use crate::net::{free_port, wait_until_listening};

/// What the server does to the next whole-file GET (a GET with a `Range` header, which the
/// deployer's preflight makes, is always served right).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mischief {
    None,
    /// Sends the full Content-Length, then half the body, then closes the connection.
    Cut,
    /// Sends the whole body with one byte changed.
    Corrupt,
}

/// Serves files (by name, at `/NAME`) over HTTP/1.1 on 127.0.0.1, one connection at a
/// time, honouring a `Range: bytes=A-B` request with a 206; stops when dropped.
pub struct HttpServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    mischief: Arc<Mutex<Mischief>>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Starts serving `files`, by name.
    pub fn serve(files: BTreeMap<String, Vec<u8>>) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1");
        let addr = listener.local_addr().expect("the server's address");
        let stop = Arc::new(AtomicBool::new(false));
        let mischief = Arc::new(Mutex::new(Mischief::None));
        let (stopping, next) = (Arc::clone(&stop), Arc::clone(&mischief));
        let thread = thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    // A client that goes away early is not the server's failure.
                    let _ = answer(stream, &files, &next);
                }
            }
        });
        HttpServer {
            addr,
            stop,
            mischief,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/NAME`.
    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    /// Misbehaves at the next whole-file GET.
    pub fn misbehave(&self, mischief: Mischief) {
        *self.mischief.lock().expect("the mischief lock") = mischief;
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request and answers it: 404 for an unknown name, 206 with the asked bytes
/// for a satisfiable `Range: bytes=A-B`, else 200 with the whole file (as the pending
/// [`Mischief`] says, for a GET without a `Range` header).
fn answer(
    stream: TcpStream,
    files: &BTreeMap<String, Vec<u8>>,
    mischief: &Mutex<Mischief>,
) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((key, value)) = line.split_once(':') {
            if key.trim().eq_ignore_ascii_case("range") {
                range = value.trim().strip_prefix("bytes=").map(str::to_owned);
            }
        }
    }
    let mut stream = stream;
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let Some(body) = files.get(path.trim_start_matches('/')) else {
        return stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    };
    let asked_range = range.is_some();
    let bounds = range.and_then(|r| {
        let (a, b) = r.split_once('-')?;
        let a: usize = a.parse().ok()?;
        let b: usize = b.parse::<usize>().ok()?.min(body.len().checked_sub(1)?);
        (a <= b).then_some((a, b))
    });
    if let Some((a, b)) = bounds {
        write!(
            stream,
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\n\
             Content-Range: bytes {a}-{b}/{}\r\nConnection: close\r\n\r\n",
            b + 1 - a,
            body.len()
        )?;
        return stream.write_all(&body[a..=b]);
    }
    let now = if asked_range {
        Mischief::None
    } else {
        std::mem::replace(
            &mut *mischief.lock().expect("the mischief lock"),
            Mischief::None,
        )
    };
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    match now {
        Mischief::None => stream.write_all(body),
        Mischief::Cut => {
            stream.write_all(&body[..body.len() / 2])?;
            stream.flush()?;
            stream.shutdown(Shutdown::Both)
        }
        Mischief::Corrupt => {
            let mut changed = body.clone();
            let middle = changed.len() / 2;
            changed[middle] ^= 0xff;
            stream.write_all(&changed)
        }
    }
}

/// `openssl s_server -WWW` serving the files of `www` over HTTPS on 127.0.0.1 with `cert`
/// and `key`, once it listens. Returns the server (killed on drop) and its port.
pub fn serve_tls(www: &Path, cert: &Path, key: &Path) -> (ChildGuard, u16) {
    let port = free_port();
    let server = ChildGuard::spawn(
        Command::new("openssl")
            .args(["s_server", "-quiet", "-WWW", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .current_dir(www)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_until_listening(port, "openssl s_server", Duration::from_secs(30));
    (server, port)
}
