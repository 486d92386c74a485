//! Frames from pcap and pcapng captures.

use std::path::{Path, PathBuf};

use pcap_file::{
    DataLink, PcapError,
    pcap::PcapReader,
    pcapng::{Block, PcapNgReader},
};

/// Why a capture gave no frames. Every text names the file.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot read {}: {error}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("{} is not a readable pcap or pcapng file: {error}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        error: PcapError,
    },
    /// Only Ethernet frames can be fed to a program as packets.
    #[error("{}: link type {link_type:?} is not Ethernet; BPF_PROG_TEST_RUN needs Ethernet frames", path.display())]
    NotEthernet { path: PathBuf, link_type: DataLink },
    #[error("{} contains no packets", path.display())]
    Empty { path: PathBuf },
}

impl CaptureError {
    /// The capture file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Read { path, .. }
            | Self::Unreadable { path, .. }
            | Self::NotEthernet { path, .. }
            | Self::Empty { path } => path,
        }
    }
}

/// Every packet of the capture, in order.
pub fn read_packets(path: &Path) -> Result<Vec<Vec<u8>>, CaptureError> {
    let bytes = std::fs::read(path).map_err(|error| CaptureError::Read {
        path: path.to_owned(),
        error,
    })?;
    let unreadable = |error| CaptureError::Unreadable {
        path: path.to_owned(),
        error,
    };
    // pcapng starts with a section header block (0x0a0d0d0a); pcap with its magic.
    let mut packets = Vec::new();
    if bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        // pcapng may mix link types per interface; frames are taken as they are.
        let mut r = PcapNgReader::new(&bytes[..]).map_err(unreadable)?;
        while let Some(block) = r.next_block() {
            match block.map_err(unreadable)? {
                Block::EnhancedPacket(p) => packets.push(p.data.into_owned()),
                Block::SimplePacket(p) => packets.push(p.data.into_owned()),
                Block::Packet(p) => packets.push(p.data.into_owned()),
                _ => {}
            }
        }
    } else {
        let mut r = PcapReader::new(&bytes[..]).map_err(unreadable)?;
        let link_type = r.header().datalink;
        if link_type != DataLink::ETHERNET {
            return Err(CaptureError::NotEthernet {
                path: path.to_owned(),
                link_type,
            });
        }
        while let Some(p) = r.next_packet() {
            packets.push(p.map_err(unreadable)?.data.into_owned());
        }
    }
    if packets.is_empty() {
        return Err(CaptureError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(packets)
}
