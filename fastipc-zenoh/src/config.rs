//! [`BridgeConfig`]: how to reach the other side, and how to batch.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::BridgeError;

/// Options of an export or an import.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BridgeConfig {
    /// Zenoh endpoints to connect to (`tcp/HOST:PORT`).
    pub connect: Vec<String>,
    /// Zenoh endpoints to listen on (`tcp/0.0.0.0:7447`).
    pub listen: Vec<String>,
    /// Multicast scouting (discovering peers on the LAN); on by default as in Zenoh.
    pub multicast: bool,
    /// A Zenoh JSON5 configuration file (TLS, authentication, routers...) to start from;
    /// the options above are applied on top of it.
    pub zenoh_config: Option<PathBuf>,
    /// Lossless: the exporter publishes reliably with congestion control `Block` (a slow
    /// network or importer slows the exporter down instead of dropping batches) and the
    /// importer's sends wait for room in a lossless local queue. Lossy (the default):
    /// congested batches are dropped, and the importer counts them.
    pub lossless: bool,
    /// Upper bound of a batch's message bytes (one Zenoh message).
    pub max_batch_bytes: usize,
    /// How long an exporter holds a batch open for more messages after its first one.
    pub max_delay: Duration,
    /// Capacity of a local queue an importer creates.
    pub capacity: usize,
    /// Export only: keep the exporter's position in the source queue across restarts.
    /// The exporter is then a durable consumer of the queue (keyed by the Zenoh key)
    /// whose position is what importers acknowledged having written: a restarted
    /// exporter resumes there (the importer drops what it receives twice), and a lossless
    /// queue's producers wait for it meanwhile, so that nothing is lost. The position
    /// stays in the queue until `fastipc_zenoh::forget` (or `Ring::release_durable`)
    /// removes it; without an importer acknowledging (a non-fastipc subscriber), it
    /// does not move.
    pub resume: bool,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            connect: Vec::new(),
            listen: Vec::new(),
            multicast: true,
            zenoh_config: None,
            lossless: false,
            max_batch_bytes: 64 * 1024,
            max_delay: Duration::from_millis(1),
            capacity: 65536,
            resume: false,
        }
    }
}

impl BridgeConfig {
    /// Adds an endpoint to connect to.
    pub fn connect(mut self, endpoint: impl Into<String>) -> Self {
        self.connect.push(endpoint.into());
        self
    }

    /// Adds an endpoint to listen on.
    pub fn listen(mut self, endpoint: impl Into<String>) -> Self {
        self.listen.push(endpoint.into());
        self
    }

    /// Turns multicast scouting off (only the explicit endpoints are used).
    pub fn no_multicast(mut self) -> Self {
        self.multicast = false;
        self
    }

    /// Starts from this Zenoh configuration file.
    pub fn zenoh_config(mut self, path: impl Into<PathBuf>) -> Self {
        self.zenoh_config = Some(path.into());
        self
    }

    /// Lossless or lossy (see [`BridgeConfig::lossless`]).
    pub fn lossless(mut self, lossless: bool) -> Self {
        self.lossless = lossless;
        self
    }

    /// Keep the exporter's position across restarts (see [`BridgeConfig::resume`]).
    pub fn resume(mut self, resume: bool) -> Self {
        self.resume = resume;
        self
    }

    /// Capacity of a queue the importer creates.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Batch bounds: bytes of messages, and time after the first message.
    pub fn batching(mut self, max_bytes: usize, max_delay: Duration) -> Self {
        self.max_batch_bytes = max_bytes.max(1);
        self.max_delay = max_delay;
        self
    }

    /// The Zenoh configuration: the file (or Zenoh's defaults), in peer mode unless the
    /// file says otherwise, with the endpoints and scouting of this configuration.
    pub fn to_zenoh(&self) -> Result<zenoh::Config, BridgeError> {
        let cfg_err = |e: zenoh::Error| BridgeError::Config(e.to_string());
        let mut config = match &self.zenoh_config {
            Some(path) => zenoh::Config::from_file(path)
                .map_err(|e| BridgeError::Config(format!("{}: {e}", path.display())))?,
            None => zenoh::Config::default(),
        };
        if !self.multicast {
            config
                .insert_json5("scouting/multicast/enabled", "false")
                .map_err(cfg_err)?;
        }
        if !self.connect.is_empty() {
            config
                .insert_json5("connect/endpoints", &json_list(&self.connect))
                .map_err(cfg_err)?;
        }
        if !self.listen.is_empty() {
            config
                .insert_json5("listen/endpoints", &json_list(&self.listen))
                .map_err(cfg_err)?;
        }
        Ok(config)
    }
}

/// `["a","b"]`, each string escaped.
fn json_list(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| {
            let escaped: String = s
                .chars()
                .flat_map(|c| match c {
                    '"' | '\\' => vec!['\\', c],
                    c => vec![c],
                })
                .collect();
            format!("\"{escaped}\"")
        })
        .collect();
    format!("[{}]", quoted.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_scouting_reach_the_zenoh_config() {
        let c = BridgeConfig::default()
            .connect("tcp/127.0.0.1:7447")
            .listen("tcp/127.0.0.1:7448")
            .no_multicast()
            .to_zenoh()
            .unwrap();
        assert_eq!(
            c.get_json("connect/endpoints").unwrap(),
            r#"["tcp/127.0.0.1:7447"]"#
        );
        assert_eq!(
            c.get_json("listen/endpoints").unwrap(),
            r#"["tcp/127.0.0.1:7448"]"#
        );
        assert_eq!(c.get_json("scouting/multicast/enabled").unwrap(), "false");
    }

    #[test]
    fn a_bad_endpoint_or_file_is_a_config_error() {
        let bad = BridgeConfig::default().connect("nonsense").to_zenoh();
        assert!(matches!(bad, Err(BridgeError::Config(_))), "{bad:?}");
        let missing = BridgeConfig::default()
            .zenoh_config("/nonexistent/zenoh.json5")
            .to_zenoh();
        assert!(
            matches!(missing, Err(BridgeError::Config(_))),
            "{missing:?}"
        );
    }
}
