//! The Redis commands, one function each, with their replies parsed into plain types.
//!
//! Replies are parsed through nested tuples and `Vec`s, never fred's `_map` helpers: those fail
//! on a `BLOCK` timeout (nil reply) and on a pending entry whose stream entry was trimmed
//! (`[id, nil]`), which would wedge a consumer on its own pending list forever
//! (`docs/` and `fred.md` §4.3). Values are kept as [`Bytes`] so a non-UTF-8 value cannot fail
//! the parse of a whole batch either.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use fred::prelude::*;
use fred::types::config::UnresponsiveConfig;
use fred::types::streams::XID;

use crate::error::{Error, Result, is_busy_group, redis};

/// `[(stream, [(id, [(field, value)])])]`: the `XREADGROUP` reply. A nil reply (BLOCK expired)
/// parses as an empty `Vec`; a deleted entry as `(id, [])`.
type ReadReply = Vec<(Bytes, Vec<RawEntry>)>;

/// `(id, [(field, value)])`.
pub(crate) type RawEntry = (String, Vec<(Bytes, Bytes)>);

/// How a client is going to be used: the blocking reader gets no client-side timeout.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Role {
    /// The dedicated connection of a blocking `XREADGROUP` loop.
    Reader,
    /// Everything else (XACK, XADD, XAUTOCLAIM, XPENDING, XINFO, XGROUP), with this timeout.
    Control(Duration),
}

/// Builds (does not connect) a fred client with a capped, jittered exponential reconnect
/// policy that never gives up.
pub(crate) fn build_client(
    url: &str,
    role: Role,
    backoff_min: Duration,
    backoff_max: Duration,
) -> Result<Client> {
    // fred's URL errors describe the problem, not the URL; still, never echo the URL.
    let config = Config::from_url(url).map_err(|e| Error::InvalidUrl(e.details().to_owned()))?;
    let min = u32::try_from(backoff_min.as_millis()).unwrap_or(u32::MAX);
    let max = u32::try_from(backoff_max.as_millis()).unwrap_or(u32::MAX);
    let policy = ReconnectPolicy::new_exponential(0, min, max, 2);
    Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = Duration::from_secs(5);
            c.internal_command_timeout = Duration::from_secs(5);
            c.tcp = TcpConfig {
                nodelay: Some(true),
                ..Default::default()
            };
            // Detects a silently dead peer; blocked connections are exempt (fred >= 10.0.4).
            c.unresponsive = UnresponsiveConfig {
                max_timeout: Some(Duration::from_secs(10)),
                interval: Duration::from_secs(2),
            };
            if let Role::Reader = role {
                // A read in flight when the connection drops must fail, not be re-sent
                // behind our back (its first delivery may already sit in our pending list).
                c.max_command_attempts = 1;
            }
        })
        .with_performance_config(|p| {
            p.default_command_timeout = match role {
                // Zero = none: a timeout racing the server-side BLOCK strands entries.
                Role::Reader => Duration::ZERO,
                Role::Control(t) => t,
            };
        })
        .set_policy(policy)
        .build()
        .map_err(|e| Error::InvalidUrl(e.details().to_owned()))
}

/// `XGROUP CREATE key group <start> MKSTREAM`; an existing group (`BUSYGROUP`) is fine.
/// Returns whether the group was created.
pub(crate) async fn ensure_group<C: StreamsInterface + Sync>(
    c: &C,
    key: &str,
    group: &str,
    start: &str,
) -> Result<bool> {
    let r: std::result::Result<Value, fred::error::Error> =
        c.xgroup_create(key, group, start, true).await;
    match r {
        Ok(_) => Ok(true),
        Err(e) if is_busy_group(&e) => Ok(false),
        Err(e) => Err(redis("XGROUP CREATE", key)(e)),
    }
}

/// `XGROUP SETID key group $`.
pub(crate) async fn set_group_to_tail<C: StreamsInterface + Sync>(
    c: &C,
    key: &str,
    group: &str,
) -> Result<()> {
    let _: Value = c
        .xgroup_setid(key, group, XID::Max)
        .await
        .map_err(redis("XGROUP SETID", key))?;
    Ok(())
}

/// One `XREADGROUP GROUP g c COUNT n [BLOCK ms] [NOACK] STREAMS key id` on `reader`, sent
/// once (no re-send after a reconnect) and with a client-side timeout of `BLOCK` + 5 s so a
/// black-holed connection cannot hang the loop forever.
#[allow(clippy::too_many_arguments)] // a plain mirror of the command's arguments
pub(crate) async fn read_group(
    reader: &Client,
    key: &str,
    group: &str,
    consumer: &str,
    count: u64,
    block: Option<Duration>,
    noack: bool,
    id: &str,
) -> Result<Vec<RawEntry>> {
    let block_ms = block.map(|b| u64::try_from(b.as_millis()).unwrap_or(u64::MAX));
    let timeout = block.unwrap_or_default() + Duration::from_secs(5);
    let reply: ReadReply = reader
        .with_options(&Options {
            max_attempts: Some(1),
            timeout: Some(timeout),
            ..Default::default()
        })
        .xreadgroup(group, consumer, Some(count), block_ms, noack, key, id)
        .await
        .map_err(redis("XREADGROUP", key))?;
    Ok(reply
        .into_iter()
        .next()
        .map(|(_stream, entries)| entries)
        .unwrap_or_default())
}

/// One `XAUTOCLAIM` page: `(next cursor, claimed entries, ids that were pending but whose
/// entries no longer exist)`. Redis has already removed the latter from the pending list.
pub(crate) async fn autoclaim_page(
    c: &Client,
    key: &str,
    group: &str,
    consumer: &str,
    min_idle: Duration,
    cursor: &str,
    count: u64,
) -> Result<(String, Vec<RawEntry>, Vec<String>)> {
    let min_idle_ms = u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX);
    let v: Value = c
        .xautoclaim(
            key,
            group,
            consumer,
            min_idle_ms,
            cursor,
            Some(count),
            false,
        )
        .await
        .map_err(redis("XAUTOCLAIM", key))?;
    let bad = |detail: String| Error::Reply {
        command: "XAUTOCLAIM",
        key: key.to_owned(),
        detail,
    };
    let parts: Vec<Value> = v.convert().map_err(|e| bad(e.details().to_owned()))?;
    if !(2..=3).contains(&parts.len()) {
        return Err(bad(format!("expected 2 or 3 parts, got {}", parts.len())));
    }
    let mut parts = parts.into_iter();
    let (Some(next), Some(entries)) = (parts.next(), parts.next()) else {
        return Err(bad("missing cursor or entries".into()));
    };
    let next: String = next.convert().map_err(|e| bad(e.details().to_owned()))?;
    let entries: Vec<RawEntry> = entries.convert().map_err(|e| bad(e.details().to_owned()))?;
    let deleted: Vec<String> = match parts.next() {
        Some(d) => d.convert().map_err(|e| bad(e.details().to_owned()))?,
        None => Vec::new(),
    };
    Ok((next, entries, deleted))
}

/// Delivery counts of `consumer`'s pending entries between `first` and `last` (inclusive):
/// `XPENDING key group first last count consumer`.
pub(crate) async fn delivery_counts(
    c: &Client,
    key: &str,
    group: &str,
    consumer: &str,
    first: &str,
    last: &str,
    count: u64,
) -> Result<HashMap<String, u64>> {
    // (id, consumer, idle_ms, deliveries)
    let rows: Vec<(String, String, u64, u64)> = c
        .xpending(key, group, (first, last, count, consumer))
        .await
        .map_err(redis("XPENDING", key))?;
    Ok(rows.into_iter().map(|(id, _, _, n)| (id, n)).collect())
}

/// `XACK key group id…` in one call; returns how many Redis acknowledged.
pub(crate) async fn ack(c: &Client, key: &str, group: &str, ids: Vec<String>) -> Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    c.xack(key, group, ids).await.map_err(redis("XACK", key))
}

/// `XADD dlq * <original fields…> error <error> source_id <id>`; returns the new id.
pub(crate) async fn dead_letter(
    c: &Client,
    dlq: &str,
    source_id: &str,
    fields: &[(Bytes, Bytes)],
    error: &str,
) -> Result<String> {
    let mut pairs: Vec<(Key, Value)> = Vec::with_capacity(fields.len() + 2);
    for (k, v) in fields {
        pairs.push((Key::from(k.clone()), Value::Bytes(v.clone())));
    }
    pairs.push((Key::from("error"), Value::from(error)));
    pairs.push((Key::from("source_id"), Value::from(source_id)));
    c.xadd(dlq, false, None::<()>, "*", pairs)
        .await
        .map_err(redis("XADD", dlq))
}

/// What the gauges show about a group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct GroupStats {
    /// Entries not yet delivered to the group; `None` when Redis cannot tell.
    pub(crate) lag: Option<u64>,
    /// Entries delivered but not acknowledged.
    pub(crate) pending: u64,
    /// The smallest pending id, if any.
    pub(crate) oldest_pending_id: Option<String>,
}

/// `XINFO GROUPS key` (lag, pending) and `XPENDING key group` (oldest pending id). `None`
/// if the group does not exist.
pub(crate) async fn group_stats(c: &Client, key: &str, group: &str) -> Result<Option<GroupStats>> {
    let groups: Vec<HashMap<String, Value>> = c
        .xinfo_groups(key)
        .await
        .map_err(redis("XINFO GROUPS", key))?;
    let Some(info) = groups
        .into_iter()
        .find(|g| g.get("name").and_then(Value::as_str).as_deref() == Some(group))
    else {
        return Ok(None);
    };
    let lag = info.get("lag").and_then(Value::as_u64);
    let pending = info.get("pending").and_then(Value::as_u64).unwrap_or(0);
    // [count, min_id, max_id, [[consumer, n], ...]]; ids are nil when nothing is pending.
    let summary: (u64, Option<String>, Option<String>, Value) = c
        .xpending(key, group, ())
        .await
        .map_err(redis("XPENDING", key))?;
    Ok(Some(GroupStats {
        lag,
        pending,
        oldest_pending_id: summary.1,
    }))
}

#[cfg(test)]
mod tests {
    //! Reply parsing against a real Redis (test-support): the nil and trimmed-entry shapes.

    use super::*;

    async fn setup() -> Option<(test_support::TestRedis, Client, String)> {
        let redis = test_support::redis().await?;
        let client = redis.client().await;
        let key = redis.unique_key("s");
        for i in 1..=5 {
            let _: String = client
                .xadd(&key, false, None::<()>, format!("{i}-0"), ("f", "v"))
                .await
                .unwrap();
        }
        assert!(ensure_group(&client, &key, "g", "0").await.unwrap());
        assert!(
            !ensure_group(&client, &key, "g", "0").await.unwrap(),
            "BUSYGROUP is fine"
        );
        Some((redis, client, key))
    }

    #[tokio::test]
    async fn lag_unknown_is_none_not_zero() {
        let Some((_redis, client, key)) = setup().await else {
            return;
        };
        let s = group_stats(&client, &key, "g").await.unwrap().unwrap();
        assert_eq!(
            s,
            GroupStats {
                lag: Some(5),
                pending: 0,
                oldest_pending_id: None
            }
        );
        let read = read_group(&client, &key, "g", "c", 1, None, false, ">")
            .await
            .unwrap();
        assert_eq!(read.len(), 1);
        let _: u64 = client.xdel(&key, "3-0").await.unwrap();
        let s = group_stats(&client, &key, "g").await.unwrap().unwrap();
        assert_eq!(
            s.lag, None,
            "a deletion in the undelivered range makes the lag unknown"
        );
        assert_eq!(s.pending, 1);
        assert_eq!(s.oldest_pending_id.as_deref(), Some("1-0"));
        assert_eq!(group_stats(&client, &key, "nope").await.unwrap(), None);
    }

    #[tokio::test]
    async fn reads_parse_blocks_deleted_entries_and_claims() {
        let Some((_redis, client, key)) = setup().await else {
            return;
        };
        // BLOCK expiring on nothing new is an empty batch, not a parse error.
        let all = read_group(&client, &key, "g", "c", 10, None, false, ">")
            .await
            .unwrap();
        assert_eq!(all.len(), 5);
        let none = read_group(
            &client,
            &key,
            "g",
            "c",
            10,
            Some(Duration::from_millis(10)),
            false,
            ">",
        )
        .await
        .unwrap();
        assert!(none.is_empty());
        // A pending entry deleted from the stream comes back as (id, []).
        let _: u64 = client.xdel(&key, "2-0").await.unwrap();
        let own = read_group(&client, &key, "g", "c", 10, None, false, "0")
            .await
            .unwrap();
        assert_eq!(own.len(), 5);
        assert_eq!(own[1], ("2-0".to_owned(), Vec::new()));
        assert_eq!(
            own[0].1,
            vec![(Bytes::from_static(b"f"), Bytes::from_static(b"v"))]
        );
        // XAUTOCLAIM: the deleted id is in the third part, and gone from the pending list.
        let (next, claimed, deleted) =
            autoclaim_page(&client, &key, "g", "d", Duration::from_millis(0), "0-0", 10)
                .await
                .unwrap();
        assert_eq!(next, "0-0");
        assert_eq!(
            claimed.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
            ["1-0", "3-0", "4-0", "5-0"]
        );
        assert_eq!(deleted, ["2-0"]);
        let counts = delivery_counts(&client, &key, "g", "d", "1-0", "5-0", 10)
            .await
            .unwrap();
        assert_eq!(counts.len(), 4);
        assert_eq!(counts["3-0"], 3, "read, re-read, claimed");
        assert_eq!(
            ack(&client, &key, "g", vec!["1-0".into(), "3-0".into()])
                .await
                .unwrap(),
            2
        );
        assert_eq!(ack(&client, &key, "g", Vec::new()).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn dead_letter_keeps_binary_fields() {
        let Some((redis, client, _key)) = setup().await else {
            return;
        };
        let dlq = redis.unique_key("dead");
        let fields = vec![(
            Bytes::from_static(b"payload"),
            Bytes::from_static(&[0xff, 0x00, 0x80]),
        )];
        dead_letter(&client, &dlq, "7-0", &fields, "not utf-8")
            .await
            .unwrap();
        let rows: Vec<(String, Vec<(Bytes, Bytes)>)> =
            client.xrange(&dlq, "-", "+", None).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].1,
            vec![
                (
                    Bytes::from_static(b"payload"),
                    Bytes::from_static(&[0xff, 0x00, 0x80])
                ),
                (
                    Bytes::from_static(b"error"),
                    Bytes::from_static(b"not utf-8")
                ),
                (Bytes::from_static(b"source_id"), Bytes::from_static(b"7-0")),
            ]
        );
    }
}
