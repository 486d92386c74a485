//! Input packets from pcap and pcapng captures.

use std::{fs::File, io::BufReader, path::Path};

use pcap_file::{
    pcap::PcapReader,
    pcapng::{Block, PcapNgReader},
};

/// Every packet of the capture, in order.
pub fn read_packets(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let unreadable = |e: pcap_file::PcapError| {
        format!(
            "{} is not a readable pcap or pcapng file: {e}",
            path.display()
        )
    };
    // pcapng starts with a section header block (0x0a0d0d0a); pcap with its magic.
    let mut packets = Vec::new();
    if bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let mut r = PcapNgReader::new(BufReader::new(File::open(path).map_err(|e| e.to_string())?))
            .map_err(unreadable)?;
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
        let linktype = r.header().datalink;
        if linktype != pcap_file::DataLink::ETHERNET {
            return Err(format!(
                "{}: link type {linktype:?} is not Ethernet; BPF_PROG_TEST_RUN needs Ethernet frames",
                path.display()
            ));
        }
        while let Some(p) = r.next_packet() {
            packets.push(p.map_err(unreadable)?.data.into_owned());
        }
    }
    if packets.is_empty() {
        return Err(format!("{} contains no packets", path.display()));
    }
    Ok(packets)
}
