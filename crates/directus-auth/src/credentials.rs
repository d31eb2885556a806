//! The client's credentials, as forwarded to Directus, and a safe key to index them by.
//!
//! A [`Credentials`] holds the raw `Cookie` header or the raw `Authorization: Bearer …`
//! header, marked sensitive; its `Debug` prints only the kind. Caches and the coalescing map
//! are keyed by a [`CredentialKey`] (a keyed 128-bit hash), never by the secret itself.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::OnceLock;

use http::header::{AUTHORIZATION, COOKIE, HeaderMap, HeaderName, HeaderValue};

use crate::error::DirectusError;

/// Which header carries the credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// The browser's raw `Cookie` header (with `directus_session_token`).
    Cookie,
    /// An `Authorization: Bearer <token>` header (non-browser clients).
    Bearer,
}

/// A client's credentials, forwarded unchanged to Directus. `Debug` never shows the secret.
///
/// ```
/// use directus_auth::Credentials;
/// let creds = Credentials::cookie("directus_session_token=s3cr3t").unwrap();
/// assert_eq!(format!("{creds:?}"), "Credentials::Cookie(<redacted>)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    kind: CredentialKind,
    value: HeaderValue,
}

impl Credentials {
    /// Credentials from a raw `Cookie` header value.
    ///
    /// # Errors
    /// [`DirectusError::InvalidCredentials`] when the value is empty or not a valid header
    /// value.
    pub fn cookie(raw: &str) -> Result<Self, DirectusError> {
        if raw.trim().is_empty() {
            return Err(DirectusError::InvalidCredentials);
        }
        Self::from_value(CredentialKind::Cookie, raw)
    }

    /// Credentials from a bearer token (the header sent is `Authorization: Bearer <token>`).
    ///
    /// # Errors
    /// [`DirectusError::InvalidCredentials`] when the token is empty or not header-safe.
    pub fn bearer_token(token: &str) -> Result<Self, DirectusError> {
        if token.trim().is_empty() {
            return Err(DirectusError::InvalidCredentials);
        }
        Self::from_value(CredentialKind::Bearer, &format!("Bearer {token}"))
    }

    fn from_value(kind: CredentialKind, raw: &str) -> Result<Self, DirectusError> {
        let mut value =
            HeaderValue::from_str(raw).map_err(|_| DirectusError::InvalidCredentials)?;
        value.set_sensitive(true);
        Ok(Credentials { kind, value })
    }

    /// Extracts the credentials of an upgrade request.
    ///
    /// An `Authorization` header with the `Bearer` scheme (any case) and a non-empty token wins
    /// (Directus itself prefers the bearer token); otherwise every non-empty `Cookie` header is
    /// forwarded (several instances joined with `"; "`, as HTTP/2 requires). Returns `None` when
    /// there is neither, so the caller can answer 401 without asking Directus.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        for value in headers.get_all(AUTHORIZATION) {
            if is_bearer(value.as_bytes()) {
                let mut value = value.clone();
                value.set_sensitive(true);
                return Some(Credentials {
                    kind: CredentialKind::Bearer,
                    value,
                });
            }
        }
        let cookies: Vec<&HeaderValue> = headers
            .get_all(COOKIE)
            .iter()
            .filter(|value| !value.as_bytes().trim_ascii().is_empty())
            .collect();
        let mut value = match cookies.as_slice() {
            [] => return None,
            [single] => (*single).clone(),
            many => {
                let mut joined = Vec::new();
                for (index, value) in many.iter().enumerate() {
                    if index > 0 {
                        joined.extend_from_slice(b"; ");
                    }
                    joined.extend_from_slice(value.as_bytes());
                }
                HeaderValue::from_bytes(&joined).ok()?
            }
        };
        value.set_sensitive(true);
        Some(Credentials {
            kind: CredentialKind::Cookie,
            value,
        })
    }

    /// Which header the credentials travel in.
    pub fn kind(&self) -> CredentialKind {
        self.kind
    }

    /// A key for caches and maps: equal credentials give equal keys; the secret cannot be
    /// read back from it (keyed SipHash, keys random per process).
    pub fn key(&self) -> CredentialKey {
        let (first, second) = hash_keys();
        let bytes = self.value.as_bytes();
        let high = first.hash_one((self.kind, bytes));
        let low = second.hash_one((self.kind, bytes));
        CredentialKey((u128::from(high) << 64) | u128::from(low))
    }

    /// The header to forward, name and (sensitive) value.
    pub(crate) fn header(&self) -> (HeaderName, HeaderValue) {
        let name = match self.kind {
            CredentialKind::Cookie => COOKIE,
            CredentialKind::Bearer => AUTHORIZATION,
        };
        (name, self.value.clone())
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            CredentialKind::Cookie => f.write_str("Credentials::Cookie(<redacted>)"),
            CredentialKind::Bearer => f.write_str("Credentials::Bearer(<redacted>)"),
        }
    }
}

/// A hash of a [`Credentials`], safe to keep in maps and to show in logs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CredentialKey(u128);

impl fmt::Debug for CredentialKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A short fingerprint is enough to correlate log lines.
        write!(f, "CredentialKey({:08x})", (self.0 >> 96) as u32)
    }
}

/// Two independent SipHash keys, random per process.
fn hash_keys() -> &'static (RandomState, RandomState) {
    static KEYS: OnceLock<(RandomState, RandomState)> = OnceLock::new();
    KEYS.get_or_init(|| (RandomState::new(), RandomState::new()))
}

/// `Bearer <non-empty token>`, scheme case-insensitive.
fn is_bearer(value: &[u8]) -> bool {
    const SCHEME: &[u8] = b"bearer ";
    value.len() > SCHEME.len()
        && value[..SCHEME.len()].eq_ignore_ascii_case(SCHEME)
        && !value[SCHEME.len()..].trim_ascii().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn debug_is_redacted() {
        let cookie = Credentials::cookie("directus_session_token=topsecret").unwrap();
        let bearer = Credentials::bearer_token("topsecret").unwrap();
        for (creds, shown) in [
            (&cookie, "Credentials::Cookie(<redacted>)"),
            (&bearer, "Credentials::Bearer(<redacted>)"),
        ] {
            let debug = format!("{creds:?} {:?} {:#?}", creds.key(), creds);
            assert!(!debug.contains("topsecret"), "{debug}");
            assert_eq!(format!("{creds:?}"), shown);
            assert!(creds.header().1.is_sensitive());
        }
    }

    #[test]
    fn bearer_header_wins_and_is_forwarded_unchanged() {
        let map = headers(&[
            (COOKIE, "directus_session_token=c"),
            (AUTHORIZATION, "bEaReR  tok.en"),
        ]);
        let creds = Credentials::from_headers(&map).unwrap();
        assert_eq!(creds.kind(), CredentialKind::Bearer);
        let (name, value) = creds.header();
        assert_eq!(name, AUTHORIZATION);
        assert_eq!(value.as_bytes(), b"bEaReR  tok.en");
    }

    #[test]
    fn cookie_is_forwarded_raw_and_joined() {
        let map = headers(&[(COOKIE, "a=b; directus_session_token=x")]);
        let creds = Credentials::from_headers(&map).unwrap();
        assert_eq!(creds.kind(), CredentialKind::Cookie);
        assert_eq!(
            creds.header(),
            (
                COOKIE,
                HeaderValue::from_static("a=b; directus_session_token=x")
            )
        );

        let map = headers(&[
            (COOKIE, "a=b"),
            (COOKIE, " "),
            (COOKIE, "directus_session_token=x"),
        ]);
        let creds = Credentials::from_headers(&map).unwrap();
        assert_eq!(
            creds.header().1.as_bytes(),
            b"a=b; directus_session_token=x"
        );
    }

    #[test]
    fn no_usable_credentials_is_none() {
        assert!(Credentials::from_headers(&HeaderMap::new()).is_none());
        assert!(Credentials::from_headers(&headers(&[(COOKIE, "  ")])).is_none());
        assert!(Credentials::from_headers(&headers(&[(AUTHORIZATION, "Basic dTpw")])).is_none());
        assert!(Credentials::from_headers(&headers(&[(AUTHORIZATION, "Bearer ")])).is_none());
        assert!(Credentials::from_headers(&headers(&[(AUTHORIZATION, "Bearer")])).is_none());
        // A non-bearer Authorization does not hide a cookie.
        let map = headers(&[(AUTHORIZATION, "Basic dTpw"), (COOKIE, "s=1")]);
        assert_eq!(
            Credentials::from_headers(&map).unwrap().kind(),
            CredentialKind::Cookie
        );
    }

    #[test]
    fn constructors_reject_empty_and_invalid() {
        assert!(Credentials::cookie("").is_err());
        assert!(Credentials::cookie("a=\nb").is_err());
        assert!(Credentials::bearer_token(" ").is_err());
        assert_eq!(
            Credentials::bearer_token("abc")
                .unwrap()
                .header()
                .1
                .as_bytes(),
            b"Bearer abc"
        );
    }

    #[test]
    fn keys_are_equal_for_equal_credentials_only() {
        let a = Credentials::cookie("s=1").unwrap();
        let b = Credentials::cookie("s=1").unwrap();
        let c = Credentials::cookie("s=2").unwrap();
        assert_eq!(a.key(), b.key());
        assert_ne!(a.key(), c.key());
        // Same secret in another header is another credential.
        let bearer = Credentials::from_value(CredentialKind::Bearer, "s=1").unwrap();
        assert_ne!(a.key(), bearer.key());
    }
}
