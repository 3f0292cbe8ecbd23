//! `http://` and `https://` image sources: checked before the first write by reading the
//! start of the file, then downloaded into the deploy's private work directory with the
//! SHA-256 computed as the bytes stream in.
//!
//! The [`Client`] is ureq with rustls: certificates are always verified, against the
//! Mozilla root certificates built into the deployer (webpki-roots), so a provisioning
//! ramdisk needs no certificate store, and against the certificates of `deploy --cacert`
//! (an image server behind a private CA). Redirects are followed (at most 5). A transfer
//! that makes no progress for [`READ_TIMEOUT`] fails. Each URL goes through the proxy the
//! environment names for it ([`Proxies`]).
//!
//! A download shows its progress with a [`Meter`]: a bar on a terminal, else a plain line
//! every few seconds (bytes so far, the percentage and the time left when the length is
//! known, the rate), and a last line saying whether the checksum was verified.
//! A partial file never stays behind: a failed or mismatching download is deleted, and a
//! finished one is deleted when its [`Download`] is dropped.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use shared::fault;

use crate::progress::{Meter, Total};
use crate::source::format::HEAD_BYTES;
use crate::source::proxy::Proxies;

/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a read may wait for the next bytes.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The HTTP(S) client of one deploy.
#[derive(Clone)]
pub struct Client {
    direct: ureq::Agent,
    proxies: Proxies,
    /// An agent for each proxy of `proxies`, by its URL.
    proxied: Vec<(String, ureq::Agent)>,
}

impl Client {
    /// A client that trusts the built-in Mozilla roots and, with `cacert`, every
    /// certificate of that PEM file as well, and goes through `proxies`. An unreadable
    /// file, one without certificates or with one that is not a valid CA certificate is an
    /// error naming the file; a proxy that is no proxy URL, one naming its variable.
    pub fn new(cacert: Option<&Path>, proxies: Proxies) -> anyhow::Result<Client> {
        let tls = cacert.map(tls_config).transpose()?.map(Arc::new);
        let builder = || {
            let builder = ureq::AgentBuilder::new()
                .timeout_connect(CONNECT_TIMEOUT)
                .timeout_read(READ_TIMEOUT)
                .redirects(5);
            match &tls {
                Some(config) => builder.tls_config(Arc::clone(config)),
                None => builder,
            }
        };
        let mut proxied: Vec<(String, ureq::Agent)> = Vec::new();
        for (variable, proxy) in [
            ("http_proxy", &proxies.http),
            ("https_proxy", &proxies.https),
        ] {
            let Some(proxy) = proxy else { continue };
            if proxied.iter().any(|(url, _)| url == proxy) {
                continue;
            }
            let parsed = ureq::Proxy::new(proxy)
                .with_context(|| format!("{variable}={proxy}: not a proxy URL"))?;
            proxied.push((proxy.clone(), builder().proxy(parsed).build()));
        }
        Ok(Client {
            direct: builder().build(),
            proxies,
            proxied,
        })
    }

    /// `GET url` (through its proxy, if any); an HTTP error status or a transport failure
    /// becomes one line. A redirect goes the way the first URL went.
    fn get(&self, url: &str, range: Option<&str>) -> anyhow::Result<ureq::Response> {
        let agent = self
            .proxies
            .for_url(url)
            .and_then(|proxy| self.proxied.iter().find(|(each, _)| each == proxy))
            .map_or(&self.direct, |(_, agent)| agent);
        get(agent, url, range)
    }
}

/// rustls' client configuration with the built-in roots plus the certificates of `path`.
fn tls_config(path: &Path) -> anyhow::Result<rustls::ClientConfig> {
    let what = || format!("--cacert {}", path.display());
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut added = 0;
    for cert in CertificateDer::pem_file_iter(path).with_context(what)? {
        let cert = cert.with_context(what)?;
        roots
            .add(cert)
            .with_context(|| format!("{}: a certificate that is not a valid CA", what()))?;
        added += 1;
    }
    if added == 0 {
        bail!("{}: no PEM certificate in the file", what());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .with_context(what)?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// `GET url` through `agent`; an HTTP error status or a transport failure becomes one line.
fn get(agent: &ureq::Agent, url: &str, range: Option<&str>) -> anyhow::Result<ureq::Response> {
    let mut request = agent.get(url);
    if let Some(range) = range {
        request = request.set("Range", range);
    }
    match request.call() {
        Ok(response) => Ok(response),
        Err(ureq::Error::Status(code, response)) => {
            bail!("{url}: HTTP {code} {}", response.status_text())
        }
        // A transport error names the URL itself when it has one (a redirect's target).
        Err(ureq::Error::Transport(transport)) if transport.url().is_some() => {
            bail!("{transport}")
        }
        Err(ureq::Error::Transport(transport)) => bail!("{url}: {transport}"),
    }
}

/// What the start of a remote file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteHead {
    /// Up to [`HEAD_BYTES`] from the start of the file.
    pub head: Vec<u8>,
    /// The file's length when the server tells it.
    pub length: Option<u64>,
}

/// Reads the first [`HEAD_BYTES`] of `url` with a ranged GET (a server that ignores the
/// range sends the whole file, of which only the start is read): proof that the source
/// answers, and the bytes its format is told by.
pub fn probe(client: &Client, url: &str) -> anyhow::Result<RemoteHead> {
    let range = format!("bytes=0-{}", HEAD_BYTES - 1);
    let response = client.get(url, Some(&range))?;
    let length = remote_length(
        response.status(),
        response.header("Content-Range"),
        response.header("Content-Length"),
    );
    let mut head = Vec::with_capacity(HEAD_BYTES);
    response
        .into_reader()
        .take(HEAD_BYTES as u64)
        .read_to_end(&mut head)
        .with_context(|| format!("{url}: reading the start of the file"))?;
    Ok(RemoteHead { head, length })
}

/// The whole file's length from a response's status and headers: a 206's
/// `Content-Range: bytes A-B/TOTAL`, else a 200's `Content-Length`.
pub fn remote_length(
    status: u16,
    content_range: Option<&str>,
    content_length: Option<&str>,
) -> Option<u64> {
    match status {
        206 => content_range?
            .trim()
            .strip_prefix("bytes ")?
            .rsplit_once('/')?
            .1
            .trim()
            .parse()
            .ok(),
        200 => content_length?.trim().parse().ok(),
        _ => None,
    }
}

/// A downloaded file in the work directory, deleted on drop.
#[derive(Debug)]
pub struct Download {
    path: PathBuf,
}

impl Download {
    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A download as it streams in: read through it, then [`Stream::finish`] checks that all
/// of it came and that its SHA-256 is the expected one. Its progress is shown as it is read.
pub struct Stream {
    image: String,
    url: String,
    reader: Box<dyn Read + Send>,
    hasher: Sha256,
    done: u64,
    length: Option<u64>,
    meter: Meter,
}

impl Stream {
    /// Starts downloading `url` for image `image`.
    pub fn open(client: &Client, image: &str, url: &str) -> anyhow::Result<Stream> {
        let response = client
            .get(url, None)
            .with_context(|| format!("image {image}: downloading"))?;
        let length = remote_length(response.status(), None, response.header("Content-Length"));
        Ok(Stream {
            image: image.to_owned(),
            url: url.to_owned(),
            reader: Box::new(response.into_reader()),
            hasher: Sha256::new(),
            done: 0,
            length,
            meter: Meter::start(
                format!("image {image}"),
                "downloaded",
                length.map_or(Total::Unknown, Total::Known),
            ),
        })
    }

    /// Checks that the whole file came and, with `sha256` (hex), its checksum; a mismatch
    /// fails naming the image and both digests.
    pub fn finish(self, sha256: Option<&str>) -> anyhow::Result<()> {
        let Stream {
            image,
            url,
            done,
            length,
            hasher,
            meter,
            ..
        } = self;
        if let Some(length) = length.filter(|&l| l != done) {
            bail!("image {image}: downloading {url}: got {done} of {length} bytes");
        }
        let got = hex(&hasher.finalize());
        match sha256 {
            Some(expected) if !expected.eq_ignore_ascii_case(&got) => bail!(
                "image {image}: checksum mismatch for {url}: expected sha256 {expected}, got {got}"
            ),
            Some(_) => meter.finish("sha256 verified"),
            None => meter.finish("not verified: no sha256"),
        }
        Ok(())
    }
}

impl Stream {
    /// What made the deploy of this download fail with `err`: a download that is cut off
    /// or corrupt makes the decompressor or the writer fail first, so the rest is read and
    /// checked, and a download that did not come whole, or whose checksum (`sha256`) is
    /// wrong, is the error; else `err`.
    pub fn explain(mut self, err: anyhow::Error, sha256: Option<&str>) -> anyhow::Error {
        crate::output::detail(format_args!("deployer: image {}: {err:#}", self.image));
        if let Err(read) = std::io::copy(&mut self, &mut std::io::sink()) {
            return read.into();
        }
        match self.finish(sha256) {
            Err(download) => download,
            Ok(()) => err,
        }
    }
}

/// The most one read takes from the connection: hashed right after it came, while it is
/// still in the processor's cache, rather than read back from memory.
const READ_AT_MOST: usize = 128 << 10;

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let len = buf.len().min(READ_AT_MOST);
        let buf = &mut buf[..len];
        let n = self.reader.read(buf).map_err(|err| {
            std::io::Error::new(
                err.kind(),
                format!(
                    "image {}: downloading {} (after {} bytes): {err}",
                    self.image, self.url, self.done
                ),
            )
        })?;
        self.hasher.update(&buf[..n]);
        self.done += n as u64;
        self.meter.add(n as u64);
        fault::step("image:download")?;
        Ok(n)
    }
}

/// Downloads `url` for image `image` into `dir` (a private directory), checking the
/// SHA-256 against `sha256` (lowercase hex) when given. A mismatch deletes the file and
/// fails naming the image and both digests.
pub fn download(
    client: &Client,
    image: &str,
    url: &str,
    sha256: Option<&str>,
    dir: &Path,
) -> anyhow::Result<Download> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(format!("image-{image}.download"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("image {image}: creating {}", path.display()))?;
    let download = Download { path };
    let mut stream = Stream::open(client, image, url)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // The stream's errors name the image, the URL and how far it got.
            Err(e) => return Err(e.into()),
        };
        file.write_all(&buf[..n])
            .with_context(|| format!("image {image}: writing {}", download.path.display()))?;
    }
    file.flush()
        .with_context(|| format!("image {image}: writing {}", download.path.display()))?;
    stream.finish(sha256)?;
    Ok(download)
}

/// The SHA-256 of the file at `path`, lowercase hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_from_ranges_and_lengths() {
        assert_eq!(
            remote_length(206, Some("bytes 0-1048575/73400320"), Some("1048576")),
            Some(73_400_320)
        );
        assert_eq!(remote_length(206, Some("bytes 0-9/*"), None), None);
        assert_eq!(remote_length(206, None, Some("10")), None);
        assert_eq!(remote_length(200, None, Some(" 4096 ")), Some(4096));
        assert_eq!(remote_length(200, Some("bytes 0-1/2"), None), None);
        assert_eq!(remote_length(200, None, Some("many")), None);
    }

    #[test]
    fn sha256_of_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    /// A proxy is a server the request line names the whole URL to: e2e's `HttpServer`
    /// serving a file under that URL is one. `images.invalid` resolves nowhere, so the
    /// file can only come through the proxy; `no_proxy` sends the same request direct.
    #[test]
    fn downloads_go_through_the_proxy_of_their_scheme_unless_no_proxy_names_the_host() {
        let url = "http://images.invalid/a.tar";
        let proxy = e2e::http::HttpServer::serve(std::collections::BTreeMap::from([(
            url.to_owned(),
            b"through the proxy".to_vec(),
        )]));
        let proxy_url = proxy.url("").trim_end_matches('/').to_owned();
        let proxies = |no_proxy: &str| Proxies {
            http: Some(proxy_url.clone()),
            https: None,
            no_proxy: no_proxy.split(',').map(str::to_owned).collect(),
        };
        let client = Client::new(None, proxies("")).unwrap();
        let head = probe(&client, url).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(head.head, b"through the proxy");

        let direct = Client::new(None, proxies("images.invalid")).unwrap();
        let err = format!("{:#}", probe(&direct, url).unwrap_err());
        assert!(err.contains("images.invalid"), "{err}");

        let bad = Proxies {
            https: Some("ftp://proxy".to_owned()),
            ..Proxies::default()
        };
        let err = format!("{:#}", Client::new(None, bad).err().unwrap());
        assert!(
            err.starts_with("https_proxy=ftp://proxy: not a proxy URL"),
            "{err}"
        );
    }
}
