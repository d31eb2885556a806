//! Publishing stream records to Redis exactly as tcp-ingestion does.

use fred::clients::Client;
use fred::interfaces::{ClientLike, StreamsInterface};
use fred::prelude::{Builder, Config, ReconnectPolicy};
use teltonika_codec::stream_record::{EntryCodec, StreamRecord, encode_entry};

use crate::SimError;

/// Counts of what a publisher sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishStats {
    /// Stream entries added.
    pub records: u64,
    /// Codec 8E frames they came from.
    pub frames: u64,
}

/// XADDs stream records to one stream (`XADD <stream> * ts … device_id … codec 8E payload …`).
#[derive(Debug, Clone)]
pub struct Publisher {
    client: Client,
    stream: String,
}

impl Publisher {
    /// Connects to `redis_url` (reconnecting by itself) for `stream`.
    pub async fn connect(redis_url: &str, stream: impl Into<String>) -> Result<Self, SimError> {
        let client = Builder::from_config(Config::from_url(redis_url)?)
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
            .build()?;
        client.init().await?;
        Ok(Self {
            client,
            stream: stream.into(),
        })
    }

    /// The stream written to.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Publishes records in order, pipelined in one round trip; returns the entry ids.
    pub async fn publish(&self, records: &[StreamRecord]) -> Result<Vec<String>, SimError> {
        let pipeline = self.client.pipeline();
        for record in records {
            let fields = encode_entry(record, EntryCodec::Codec8E);
            let _: () = pipeline
                .xadd(&self.stream, false, None, "*", fields)
                .await?;
        }
        Ok(pipeline.all().await?)
    }

    /// Closes the connection.
    pub async fn quit(&self) {
        let _ = self.client.quit().await;
    }
}
