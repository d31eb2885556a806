//! Tiny string-level URL surgery for `postgres://` and `redis://` URLs (no URL crate needed).

/// The parts of `scheme://[userinfo@]host[:port][/path][?query]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parts {
    pub(crate) scheme: String,
    pub(crate) userinfo: Option<String>,
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
    pub(crate) path: String,
    pub(crate) query: Option<String>,
}

/// Splits a URL; `None` when it has no `scheme://` or a non-numeric port.
pub(crate) fn parse(url: &str) -> Option<Parts> {
    let (scheme, rest) = url.split_once("://")?;
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query.to_owned())),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], rest[slash..].to_owned()),
        None => (rest, String::new()),
    };
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(at) => (Some(authority[..at].to_owned()), &authority[at + 1..]),
        None => (None, authority),
    };
    let (host, port) = if let Some(stripped) = hostport.strip_prefix('[') {
        let (host, after) = stripped.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port.parse().ok()?),
            None => None,
        };
        (format!("[{host}]"), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port.parse().ok()?)),
            None => (hostport.to_owned(), None),
        }
    };
    Some(Parts {
        scheme: scheme.to_owned(),
        userinfo,
        host,
        port,
        path,
        query,
    })
}

impl Parts {
    /// Joins the parts back into a URL.
    pub(crate) fn render(&self) -> String {
        let mut out = format!("{}://", self.scheme);
        if let Some(userinfo) = &self.userinfo {
            out.push_str(userinfo);
            out.push('@');
        }
        out.push_str(&self.host);
        if let Some(port) = self.port {
            out.push_str(&format!(":{port}"));
        }
        out.push_str(&self.path);
        if let Some(query) = &self.query {
            out.push('?');
            out.push_str(query);
        }
        out
    }

    /// The URL with its password replaced by `***`, for messages.
    pub(crate) fn redacted(&self) -> String {
        let mut parts = self.clone();
        if let Some(userinfo) = &parts.userinfo
            && let Some((user, _)) = userinfo.split_once(':')
        {
            parts.userinfo = Some(format!("{user}:***"));
        }
        parts.render()
    }
}

/// `url` with its path replaced (a PostgreSQL database name, a Redis database index).
pub(crate) fn with_path(url: &str, path: &str) -> String {
    match parse(url) {
        Some(mut parts) => {
            parts.path = format!("/{path}");
            parts.render()
        }
        None => url.to_owned(),
    }
}

/// `url` with its host and port replaced (to route it through a [`crate::TcpProxy`]).
pub(crate) fn with_host_port(url: &str, host: &str, port: u16) -> String {
    match parse(url) {
        Some(mut parts) => {
            parts.host = host.to_owned();
            parts.port = Some(port);
            parts.render()
        }
        None => url.to_owned(),
    }
}

/// The `host:port` of a test server's `url` (`default_port` when it names none), e.g. as a
/// [`crate::TcpProxy`] target. Panics on a URL the crate did not make.
pub(crate) fn host_port(url: &str, default_port: u16) -> String {
    let parts = parse(url).unwrap_or_else(|| panic!("bad url {url}"));
    format!("{}:{}", parts.host, parts.port.unwrap_or(default_port))
}

/// `url` routed through `proxy` (whose target must be [`host_port`] of `url`).
pub(crate) fn via(url: &str, proxy: &crate::TcpProxy) -> String {
    let addr = proxy.local_addr();
    with_host_port(url, &addr.ip().to_string(), addr.port())
}

/// The URL with any password masked, for log lines.
pub(crate) fn redact(url: &str) -> String {
    parse(url).map_or_else(|| "<unparsable url>".to_owned(), |parts| parts.redacted())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_replaces() {
        let url = "postgres://postgres:secret@127.0.0.1:5432/postgres?sslmode=disable";
        assert_eq!(parse(url).unwrap().render(), url);
        assert_eq!(
            with_path(url, "t_1"),
            "postgres://postgres:secret@127.0.0.1:5432/t_1?sslmode=disable"
        );
        assert_eq!(
            with_host_port(url, "127.0.0.1", 9),
            "postgres://postgres:secret@127.0.0.1:9/postgres?sslmode=disable"
        );
        assert_eq!(
            redact(url),
            "postgres://postgres:***@127.0.0.1:5432/postgres?sslmode=disable"
        );
        assert_eq!(with_path("redis://localhost", "2"), "redis://localhost/2");
        assert_eq!(parse("redis://[::1]:6379").unwrap().port, Some(6379));
        assert!(parse("not a url").is_none());
        assert!(parse("redis://h:port").is_none());
    }
}
