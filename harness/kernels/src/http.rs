//! HTTP(S) downloads from the mirror, streamed with progress.

use std::io::Read;
use std::time::Duration;

use ureq::tls::{RootCerts, TlsConfig};

use crate::error::KernelError;
use harness_events::{Event, EventSink};

/// Long enough for a slow mirror, short enough that a dead one is noticed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
/// Per read, not for the whole body: a big kernel on a slow link may take minutes.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

const CHUNK: usize = 64 * 1024;

/// A failed GET: 404 is kept apart because callers explain it differently.
pub(crate) enum GetError {
    NotFound,
    Other(KernelError),
}

/// An HTTP client configured for mirror downloads.
pub(crate) struct Http {
    agent: ureq::Agent,
}

impl Http {
    pub(crate) fn new() -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_recv_response(Some(RESPONSE_TIMEOUT))
            .timeout_per_read(Some(READ_TIMEOUT))
            .http_status_as_error(false)
            // Trust the machine's CA store, as apt and curl do: mirrors behind
            // a company proxy present certificates Mozilla's roots lack.
            .tls_config(
                TlsConfig::builder()
                    .root_certs(RootCerts::PlatformVerifier)
                    .build(),
            )
            .user_agent(concat!("harness-kernels/", env!("CARGO_PKG_VERSION")))
            .build();
        Http {
            agent: config.new_agent(),
        }
    }

    /// The configured agent (timeouts, CA store, user agent), for requests
    /// that need headers [`Http::get`] does not send or read (registries).
    pub(crate) fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    /// Streams `url` into `sink` chunk by chunk, reporting progress as
    /// `what`. Stops once more than `max_bytes` arrived, so a wrong file cannot
    /// fill the disk; returns the number of bytes passed to `sink`.
    pub(crate) fn get(
        &self,
        url: &str,
        what: &str,
        max_bytes: u64,
        events: &dyn EventSink,
        mut sink: impl FnMut(&[u8]) -> Result<(), KernelError>,
    ) -> Result<u64, GetError> {
        let transport = |e: &dyn std::fmt::Display| {
            GetError::Other(KernelError::Http {
                url: url.to_owned(),
                message: e.to_string(),
            })
        };
        let response = self.agent.get(url).call().map_err(|e| transport(&e))?;
        let status = response.status().as_u16();
        if status == 404 {
            return Err(GetError::NotFound);
        }
        if status != 200 {
            return Err(GetError::Other(KernelError::HttpStatus {
                url: url.to_owned(),
                status,
            }));
        }
        let body = response.into_body();
        let total = body.content_length().unwrap_or(max_bytes);
        let mut reader = body.into_reader();
        events.event(Event::DownloadStarted {
            what: what.to_owned(),
            total_bytes: total,
        });
        let mut buffer = vec![0; CHUNK];
        let mut received = 0u64;
        let outcome = loop {
            let n = match reader.read(&mut buffer) {
                Ok(0) => break Ok(received),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(transport(&e)),
            };
            // The overflow is passed on so that the caller sees the wrong size.
            if let Err(e) = sink(&buffer[..n]) {
                break Err(GetError::Other(e));
            }
            received += n as u64;
            events.event(Event::DownloadAdvanced { bytes: n as u64 });
            if received > max_bytes {
                break Ok(received);
            }
        };
        events.event(Event::DownloadFinished);
        outcome
    }

    /// Downloads a small file (an index) into memory; see [`Http::get`].
    pub(crate) fn get_bytes(
        &self,
        url: &str,
        what: &str,
        max_bytes: u64,
        events: &dyn EventSink,
    ) -> Result<Vec<u8>, GetError> {
        let mut bytes = Vec::new();
        self.get(url, what, max_bytes, events, |chunk| {
            bytes.extend_from_slice(chunk);
            Ok(())
        })?;
        Ok(bytes)
    }
}

impl GetError {
    /// The error for callers that have nothing special to say about a 404.
    pub(crate) fn into_kernel_error(self, url: &str) -> KernelError {
        match self {
            GetError::NotFound => KernelError::HttpStatus {
                url: url.to_owned(),
                status: 404,
            },
            GetError::Other(e) => e,
        }
    }
}
