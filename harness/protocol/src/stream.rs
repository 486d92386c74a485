//! The record stream on the wire: JSON lines through one deflate stream,
//! flushed (a sync flush) after every record or group of records the
//! writer chose to send together.
//!
//! Inside a VM every byte of the stream through an I/O port costs an
//! emulated access and a host syscall (shared memory, where the VM has it,
//! costs neither, but its space is bounded), so the stream is compressed; records repeat names, map
//! layouts and packet bytes, and one shared stream shrinks them 7x. The sync
//! flush keeps each record readable on the host as soon as it is written,
//! so a guest that dies mid-run still leaves every record before the crash.

use std::io::{self, BufRead, BufReader, Read, Write};

use flate2::{Compression, read::DeflateDecoder, write::DeflateEncoder};

use crate::{Record, decode_line, encode_line};

/// The plain line a stream starts with, so a reader can tell our stream
/// from anything else on the port (a deflate stream has no signature).
const MAGIC: &[u8] = b"harness-records deflate v1\n";

/// Writes records to a stream [`RecordReader`] reads.
pub struct RecordWriter<W: Write>(DeflateEncoder<W>);

impl<W: Write> RecordWriter<W> {
    /// Starts a stream on `inner` (writes the stream's header at once).
    pub fn new(mut inner: W) -> io::Result<Self> {
        inner.write_all(MAGIC)?;
        // The fastest level: under TCG, compressing must cost less than the
        // bytes it saves.
        Ok(Self(DeflateEncoder::new(inner, Compression::fast())))
    }

    /// Writes one record and flushes it through to `inner`.
    pub fn emit(&mut self, record: &Record) -> io::Result<()> {
        self.write(record)?;
        self.flush()
    }

    /// Writes one record into the stream; it reaches `inner` with a later
    /// record's flush, or [`Self::flush`]. Records written together share
    /// one flush (its bytes and its cost: under TCG a sync flush per record
    /// was a third of the stream and of the time spent sending).
    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        self.0.write_all(encode_line(record).as_bytes())
    }

    /// Flushes what was written through to `inner` (a sync flush): the
    /// reader can decode every record written so far.
    pub fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }

    pub fn get_ref(&self) -> &W {
        self.0.get_ref()
    }
}

/// Why a stream could not be read further.
#[derive(Debug)]
pub enum StreamError {
    /// The bytes are not a deflate stream (or not ours).
    Corrupt(io::Error),
    /// A line that is not a record.
    Malformed { line: String, error: String },
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Corrupt(e) => write!(f, "the record stream is corrupt: {e}"),
            Self::Malformed { line, error } => write!(f, "not a record ({error}): {line}"),
        }
    }
}

/// Reads the records of a [`RecordWriter`] stream as they arrive. A stream
/// cut short (the guest died) simply ends; whether it is complete is for the
/// caller to judge by its [`Record::Done`].
pub struct RecordReader<R: Read> {
    lines: BufReader<DeflateDecoder<BufReader<R>>>,
    line: String,
    /// Whether the header has been checked (read lazily, on the first
    /// record, so creating a reader never blocks).
    started: bool,
    failed: bool,
}

impl<R: Read> RecordReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            lines: BufReader::new(DeflateDecoder::new(BufReader::new(inner))),
            line: String::new(),
            started: false,
            failed: false,
        }
    }

    /// Checks the header; `Ok(false)`: the stream ended before it.
    fn start(&mut self) -> Result<bool, StreamError> {
        let raw = self.lines.get_mut().get_mut();
        let mut header = Vec::with_capacity(MAGIC.len());
        raw.by_ref()
            .take(MAGIC.len() as u64)
            .read_to_end(&mut header)
            .map_err(StreamError::Corrupt)?;
        if header.is_empty() {
            return Ok(false);
        }
        if header != MAGIC {
            return Err(StreamError::Corrupt(io::Error::other(format!(
                "it starts with {:?}, not {:?}",
                String::from_utf8_lossy(&header),
                String::from_utf8_lossy(MAGIC).trim_end()
            ))));
        }
        Ok(true)
    }
}

impl<R: Read> Iterator for RecordReader<R> {
    type Item = Result<Record, StreamError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if !self.started {
            self.started = true;
            match self.start() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        self.line.clear();
        match self.lines.read_line(&mut self.line) {
            // A last line without its newline was cut off mid-record.
            Ok(0) => None,
            Ok(_) if !self.line.ends_with('\n') => None,
            Ok(_) => Some(decode_line(&self.line).map_err(|e| {
                self.failed = true;
                StreamError::Malformed {
                    line: self.line.trim_end().to_owned(),
                    error: e.to_string(),
                }
            })),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => None,
            Err(e) => {
                self.failed = true;
                Some(Err(StreamError::Corrupt(e)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Done, ProbeReport};

    fn probe(i: usize) -> Record {
        Record::Probe(ProbeReport {
            name: format!("probe {i}"),
            available: i.is_multiple_of(2),
            detail: "the same words again and again ".repeat(4),
        })
    }

    #[test]
    fn records_round_trip_and_shrink() {
        let mut w = RecordWriter::new(Vec::new()).unwrap();
        let records: Vec<Record> = (0..50).map(probe).collect();
        for r in &records {
            w.emit(r).unwrap();
        }
        let plain: usize = records.iter().map(|r| encode_line(r).len()).sum();
        let bytes = w.get_ref().clone();
        assert!(bytes.len() * 4 < plain, "{} vs {plain}", bytes.len());
        let back: Vec<Record> = RecordReader::new(bytes.as_slice())
            .map(Result::unwrap)
            .collect();
        assert_eq!(back, records);
    }

    #[test]
    fn each_record_is_readable_as_soon_as_it_is_emitted() {
        let mut w = RecordWriter::new(Vec::new()).unwrap();
        w.emit(&probe(1)).unwrap();
        let first = w.get_ref().len();
        w.emit(&Record::Done(Done {
            error: None,
            timings: None,
        }))
        .unwrap();
        // Only the bytes flushed for the first record: it decodes whole.
        let prefix = w.get_ref()[..first].to_vec();
        let back: Vec<_> = RecordReader::new(prefix.as_slice()).collect();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].as_ref().unwrap(), &probe(1));
    }

    #[test]
    fn records_written_together_arrive_with_their_flush_in_fewer_bytes() {
        let records: Vec<Record> = (0..50).map(probe).collect();
        let mut each = RecordWriter::new(Vec::new()).unwrap();
        for r in &records {
            each.emit(r).unwrap();
        }
        let mut together = RecordWriter::new(Vec::new()).unwrap();
        together.emit(&records[0]).unwrap();
        let flushed = together.get_ref().len();
        for r in &records[1..] {
            together.write(r).unwrap();
        }
        // Written but not flushed: the reader still sees the first alone.
        let before = together.get_ref().clone();
        let back: Vec<_> = RecordReader::new(before.as_slice()).collect();
        assert_eq!(back.len(), 1, "{flushed} then {} bytes", before.len());
        together.flush().unwrap();
        let bytes = together.get_ref().clone();
        let back: Vec<Record> = RecordReader::new(bytes.as_slice())
            .map(Result::unwrap)
            .collect();
        assert_eq!(back, records);
        assert!(
            bytes.len() < each.get_ref().len(),
            "{} vs {}",
            bytes.len(),
            each.get_ref().len()
        );
    }

    #[test]
    fn a_stream_cut_mid_record_ends_after_the_last_whole_one() {
        let mut w = RecordWriter::new(Vec::new()).unwrap();
        w.emit(&probe(1)).unwrap();
        let first = w.get_ref().len();
        w.emit(&probe(2)).unwrap();
        let cut = w.get_ref()[..first + 3].to_vec();
        let back: Vec<_> = RecordReader::new(cut.as_slice()).collect();
        assert_eq!(back.len(), 1, "{back:?}");
        assert!(back[0].is_ok());
    }

    #[test]
    fn bytes_that_are_not_a_stream_are_reported() {
        let back: Vec<_> = RecordReader::new(&b"{\"record\":\"done\"}\n"[..]).collect();
        assert_eq!(back.len(), 1);
        let err = back[0].as_ref().unwrap_err().to_string();
        assert!(
            err.contains("corrupt") && err.contains("harness-records"),
            "{err}"
        );
    }
}
