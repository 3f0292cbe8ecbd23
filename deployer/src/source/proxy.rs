//! Which proxy an `http://` or `https://` download goes through, from the variables curl
//! and wget read: `http_proxy` for http:// (lower case only: a CGI program gets
//! `HTTP_PROXY` from a request's `Proxy:` header, so curl ignores it too), `https_proxy`
//! or `HTTPS_PROXY` for https://, and `no_proxy` or `NO_PROXY`, a comma-separated list of
//! hosts that go direct: `example.com` also covers its subdomains (a leading dot is the
//! same), `*` covers every host; ports and address ranges are not read. The deploy
//! ramdisk's `deployer.proxy=` sets the first two.

/// The proxies of one deploy, read once ([`Proxies::from_env`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxies {
    pub http: Option<String>,
    pub https: Option<String>,
    pub no_proxy: Vec<String>,
}

impl Proxies {
    /// The proxies this process's environment names (an empty variable names none).
    pub fn from_env() -> Proxies {
        let var = |names: &[&str]| {
            names
                .iter()
                .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
        };
        Proxies {
            http: var(&["http_proxy"]),
            https: var(&["https_proxy", "HTTPS_PROXY"]),
            no_proxy: var(&["no_proxy", "NO_PROXY"])
                .map(|list| parse_no_proxy(&list))
                .unwrap_or_default(),
        }
    }

    /// The proxy `url` goes through, `None` for a direct connection.
    pub fn for_url(&self, url: &str) -> Option<&str> {
        let (scheme, rest) = url.split_once("://")?;
        let proxy = match scheme.to_ascii_lowercase().as_str() {
            "http" => self.http.as_deref(),
            "https" => self.https.as_deref(),
            _ => None,
        }?;
        let host = host_of(rest);
        let bypassed = self.no_proxy.iter().any(|entry| {
            entry == "*"
                || host == *entry
                || host
                    .strip_suffix(entry.as_str())
                    .is_some_and(|head| head.ends_with('.'))
        });
        (!bypassed).then_some(proxy)
    }
}

/// The entries of a `no_proxy` value, lower case, without a leading dot.
fn parse_no_proxy(list: &str) -> Vec<String> {
    list.split(',')
        .map(|entry| entry.trim().trim_start_matches('.').to_ascii_lowercase())
        .filter(|entry| !entry.is_empty())
        .collect()
}

/// The host of `rest` (a URL after `scheme://`), lower case, without user, port or the
/// brackets of an IPv6 address.
fn host_of(rest: &str) -> String {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let host = if let Some(bracketed) = host_port.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    host.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(no_proxy: &str) -> Proxies {
        Proxies {
            http: Some("http://proxy:3128".to_owned()),
            https: Some("http://secure-proxy:3128".to_owned()),
            no_proxy: parse_no_proxy(no_proxy),
        }
    }

    #[test]
    fn each_scheme_takes_its_own_proxy() {
        let p = proxies("");
        assert_eq!(p.for_url("http://images/a.tar"), Some("http://proxy:3128"));
        assert_eq!(
            p.for_url("HTTPS://images/a.tar"),
            Some("http://secure-proxy:3128")
        );
        assert_eq!(p.for_url("rsync://images/a"), None);
        let only_http = Proxies {
            https: None,
            ..proxies("")
        };
        assert_eq!(only_http.for_url("https://images/a.tar"), None);
    }

    #[test]
    fn no_proxy_covers_hosts_and_their_subdomains() {
        let p = proxies(" .example.com, 10.0.2.2,Local ");
        assert_eq!(p.no_proxy, ["example.com", "10.0.2.2", "local"]);
        for direct in [
            "http://example.com/a",
            "http://images.example.com:8080/a",
            "https://user:pw@10.0.2.2:443/a",
            "http://LOCAL/a",
        ] {
            assert_eq!(p.for_url(direct), None, "{direct}");
        }
        for proxied in [
            "http://notexample.com/a",
            "http://example.com.evil/a",
            "http://10.0.2.20/a",
        ] {
            assert!(p.for_url(proxied).is_some(), "{proxied}");
        }
        assert_eq!(proxies("*").for_url("http://anything/a"), None);
    }

    #[test]
    fn the_host_is_read_from_the_authority() {
        assert_eq!(host_of("u:p@Host.Example:80/x?y"), "host.example");
        assert_eq!(host_of("[fd00::1]:8080/x"), "fd00::1");
        assert_eq!(host_of("host#frag"), "host");
    }
}
