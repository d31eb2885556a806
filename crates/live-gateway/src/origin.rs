//! The upgrade's `Origin` check (cross-site WebSocket hijacking defence).
//!
//! A request without `Origin` (a non-browser client) passes. With one, the origin must be in the
//! allow-list (exact `scheme://host[:port]`, compared ASCII-case-insensitively, a trailing `/`
//! ignored) or, when the list is empty, its `host[:port]` must equal the `Host` header.

/// Decides whether an upgrade request's origin is acceptable.
///
/// `origin` and `host` are the raw header values (`None` when absent or not valid text).
pub(crate) fn origin_allowed(origin: Option<&str>, host: Option<&str>, allowed: &[String]) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    let origin = origin.trim().trim_end_matches('/');
    if !allowed.is_empty() {
        return allowed.iter().any(|candidate| {
            candidate
                .trim()
                .trim_end_matches('/')
                .eq_ignore_ascii_case(origin)
        });
    }
    let Some(host) = host else {
        return false;
    };
    // `null` (sandboxed iframes, file://) and anything without a scheme never match.
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let authority = authority_without_default_port(scheme, authority);
    let host = host.trim();
    !authority.is_empty()
        && (authority.eq_ignore_ascii_case(host)
            || authority.eq_ignore_ascii_case(authority_without_default_port(scheme, host)))
}

/// `example.com:443` for https is the same origin as `example.com`.
fn authority_without_default_port<'a>(scheme: &str, authority: &'a str) -> &'a str {
    let default = if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("wss") {
        ":443"
    } else if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("ws") {
        ":80"
    } else {
        return authority;
    };
    authority.strip_suffix(default).unwrap_or(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_origin_passes() {
        assert!(origin_allowed(None, Some("a.example"), &[]));
        assert!(origin_allowed(None, None, &["https://x".to_owned()]));
    }

    #[test]
    fn same_origin_when_list_empty() {
        assert!(origin_allowed(
            Some("https://rally.example"),
            Some("rally.example"),
            &[]
        ));
        assert!(origin_allowed(
            Some("http://127.0.0.1:8081"),
            Some("127.0.0.1:8081"),
            &[]
        ));
        assert!(origin_allowed(
            Some("https://rally.example"),
            Some("rally.example:443"),
            &[]
        ));
        assert!(!origin_allowed(
            Some("https://evil.example"),
            Some("rally.example"),
            &[]
        ));
        assert!(!origin_allowed(
            Some("http://127.0.0.1:9999"),
            Some("127.0.0.1:8081"),
            &[]
        ));
        assert!(!origin_allowed(Some("null"), Some("rally.example"), &[]));
        assert!(!origin_allowed(Some("https://rally.example"), None, &[]));
    }

    #[test]
    fn allow_list_is_exact() {
        let allowed = vec![
            "https://rally.example".to_owned(),
            "http://localhost:5173".to_owned(),
        ];
        assert!(origin_allowed(
            Some("https://rally.example"),
            Some("x"),
            &allowed
        ));
        assert!(origin_allowed(
            Some("HTTPS://Rally.Example/"),
            Some("x"),
            &allowed
        ));
        assert!(origin_allowed(
            Some("http://localhost:5173"),
            Some("x"),
            &allowed
        ));
        assert!(!origin_allowed(
            Some("http://localhost:5174"),
            Some("localhost:5174"),
            &allowed
        ));
        assert!(!origin_allowed(
            Some("https://rally.example.evil"),
            Some("x"),
            &allowed
        ));
        // With a list, same-origin alone is not enough.
        assert!(!origin_allowed(Some("https://x"), Some("x"), &allowed));
    }
}
