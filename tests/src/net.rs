//! TCP ports on the loopback network for the servers the tests start (an rsync daemon, an
//! `openssl s_server`).

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// A port on 127.0.0.1 nobody listens on when asked (a race with other tests is possible
/// but harmless: the server then fails to start and [`wait_until_listening`] says so).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("binding a free port on 127.0.0.1")
}

/// Waits until something accepts connections on 127.0.0.1:`port`; panics naming `what`
/// when nothing does within `timeout`.
pub fn wait_until_listening(port: u16, what: &str, timeout: Duration) {
    wait_until_listening_at(Ipv4Addr::LOCALHOST, port, what, timeout);
}

/// Waits until something accepts connections on `address`:`port`; panics naming `what`
/// when nothing does within `timeout`.
pub fn wait_until_listening_at(address: Ipv4Addr, port: u16, what: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect((address, port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {address}:{port} within {timeout:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}
