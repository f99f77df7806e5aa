//! Streaming FASTA input, plain or gzip-compressed (detected from the content, not the name).
//!
//! Parsing is done by [`needletail`]; this module adds owned records, errors that name the file
//! and line, and refuses FASTQ.
//!
//! ```no_run
//! use prottrans_data::FastaReader;
//!
//! for record in FastaReader::open("proteome.fasta.gz")? {
//!     let record = record?;
//!     println!("{} has {} residues", record.id, record.sequence.len());
//! }
//! # Ok::<(), prottrans_data::DataError>(())
//! ```

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use needletail::errors::ParseErrorKind;
use needletail::parser::{FastxReader, Format};

use crate::error::DataError;
use crate::tokenizer::{TokenizeError, Tokenizer};

/// One FASTA record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastaRecord {
    /// The first word of the header.
    pub id: String,
    /// The whole header line without `>`.
    pub header: String,
    /// The sequence with line breaks removed, as written (case and characters untouched).
    pub sequence: Vec<u8>,
    /// 1-based line number of the header.
    pub line: u64,
    /// Index in `sequence` of the first character of each sequence line.
    line_starts: Vec<usize>,
}

impl FastaRecord {
    /// The 1-based file line holding the 1-based sequence position `position`.
    pub fn line_of(&self, position: usize) -> u64 {
        let index = position.saturating_sub(1);
        let lines_before = self.line_starts.partition_point(|&start| start <= index);
        self.line + lines_before.max(1) as u64
    }
}

/// A streaming reader of FASTA records.
pub struct FastaReader {
    path: PathBuf,
    inner: Option<Box<dyn FastxReader>>,
}

impl std::fmt::Debug for FastaReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastaReader")
            .field("path", &self.path)
            .finish()
    }
}

impl FastaReader {
    /// Opens a FASTA file (plain or gzip).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|source| DataError::Io {
            path: path.clone(),
            source,
        })?;
        Self::from_reader(path, BufReader::new(file))
    }

    /// Reads FASTA from any reader; `name` is used in errors.
    pub fn from_reader(
        name: impl Into<PathBuf>,
        reader: impl Read + Send + 'static,
    ) -> Result<Self, DataError> {
        let path = name.into();
        let inner = match needletail::parse_fastx_reader(reader) {
            Ok(inner) => Some(inner),
            Err(e) if e.kind == ParseErrorKind::EmptyFile => None,
            Err(e) => return Err(fasta_error(&path, e)),
        };
        Ok(Self { path, inner })
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads every record and tokenises it, calling `f` with the record and its residue ids.
    ///
    /// Tokenisation errors name the file and the exact line of the offending character.
    /// `f` may fail with its own error type, into which data errors convert.
    pub fn for_each_tokenized<E: From<DataError>>(
        self,
        tokenizer: &Tokenizer,
        mut f: impl FnMut(FastaRecord, Vec<u32>) -> Result<(), E>,
    ) -> Result<(), E> {
        let path = self.path.clone();
        for record in self {
            let record = record?;
            match tokenizer.encode_residues(&record.id, &record.sequence) {
                Ok(ids) => f(record, ids)?,
                Err(source) => {
                    let line = match &source {
                        TokenizeError::Empty { .. } => record.line,
                        other => record.line_of(other.position().unwrap_or(1)),
                    };
                    return Err(DataError::Sequence { path, line, source }.into());
                }
            }
        }
        Ok(())
    }
}

impl Iterator for FastaReader {
    type Item = Result<FastaRecord, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        let inner = self.inner.as_mut()?;
        let record = match inner.next()? {
            Ok(record) => record,
            Err(e) => {
                self.inner = None; // the parser cannot continue after an error
                return Some(Err(fasta_error(&self.path, e)));
            }
        };
        if record.format() != Format::Fasta {
            let line = record.start_line_number();
            self.inner = None;
            return Some(Err(DataError::Fasta {
                path: self.path.clone(),
                line,
                message: "this is FASTQ; protein input must be FASTA".to_string(),
            }));
        }
        let line = record.start_line_number();
        // Ids become output keys and labels' look-up keys: replacing bytes would silently
        // change them (and could make two ids one).
        let header = match std::str::from_utf8(record.id()) {
            Ok(text) => text.trim().to_string(),
            Err(e) => {
                let byte = record.id()[e.valid_up_to()];
                return Some(Err(DataError::Fasta {
                    path: self.path.clone(),
                    line,
                    message: format!(
                        "the header is not UTF-8 text (byte 0x{byte:02x} at column {}); re-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)",
                        e.valid_up_to() + 2
                    ),
                }));
            }
        };
        let id = header.split_whitespace().next().unwrap_or("").to_string();
        if id.is_empty() {
            return Some(Err(DataError::Fasta {
                path: self.path.clone(),
                line,
                message: "record with an empty header".to_string(),
            }));
        }
        let raw = record.raw_seq();
        let mut sequence = Vec::with_capacity(raw.len());
        let mut line_starts = Vec::new();
        for chunk in raw.split(|&b| b == b'\n') {
            let chunk = chunk.strip_suffix(b"\r").unwrap_or(chunk);
            line_starts.push(sequence.len());
            sequence.extend_from_slice(chunk);
        }
        Some(Ok(FastaRecord {
            id,
            header,
            sequence,
            line,
            line_starts,
        }))
    }
}

fn fasta_error(path: &Path, e: needletail::errors::ParseError) -> DataError {
    match e.kind {
        ParseErrorKind::Io => DataError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e.msg),
        },
        _ => DataError::Fasta {
            path: path.to_path_buf(),
            // needletail counts the start of the file as line 0.
            line: e.position.line.max(1),
            // needletail leaves the message of a truncated record empty.
            message: match (e.kind, e.position.id) {
                (ParseErrorKind::UnexpectedEnd, Some(id)) => {
                    format!("record '{id}' ends before its sequence (a header with no residues)")
                }
                (ParseErrorKind::UnexpectedEnd, None) => {
                    "the file ends inside a record (a header with no residues)".to_string()
                }
                _ => e.msg,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn read(text: &'static [u8]) -> Vec<Result<FastaRecord, DataError>> {
        FastaReader::from_reader("test.fasta", text)
            .unwrap()
            .collect()
    }

    #[test]
    fn refuses_a_header_that_is_not_utf8() {
        let records = read(b">P1\nMKT\n>caf\xe9 protein\nAC\n");
        assert!(records[0].is_ok());
        let message = records[1].as_ref().unwrap_err().to_string();
        assert!(
            message.contains("test.fasta:3") && message.contains("0xe9 at column 5"),
            "{message}"
        );
    }

    #[test]
    fn reads_multi_line_records() {
        let records = read(b">sp|P1|A first protein\nMKT\nLLV\n>P2\nAC\n");
        let records: Vec<_> = records.into_iter().map(Result::unwrap).collect();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].id, "sp|P1|A");
        assert_eq!(records[0].header, "sp|P1|A first protein");
        assert_eq!(records[0].sequence, b"MKTLLV");
        assert_eq!(records[0].line, 1);
        assert_eq!(records[0].line_of(1), 2);
        assert_eq!(records[0].line_of(4), 3);
        assert_eq!(records[1].line, 4);
    }

    #[test]
    fn reads_gzip_by_content() {
        let mut encoder = flate2_encoder();
        encoder.write_all(b">a\nMK\n>b\nLL\n").unwrap();
        let bytes = encoder.finish().unwrap();
        let records: Vec<_> = FastaReader::from_reader("x.fa", std::io::Cursor::new(bytes))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].sequence, b"LL");
    }

    fn flate2_encoder() -> needletail_gz::GzEncoder<Vec<u8>> {
        needletail_gz::GzEncoder::new(Vec::new(), needletail_gz::Compression::default())
    }

    // needletail re-exports nothing for writing gzip; flate2 is its dependency.
    mod needletail_gz {
        pub use flate2::Compression;
        pub use flate2::write::GzEncoder;
    }

    #[test]
    fn empty_input_has_no_records() {
        assert!(read(b"").is_empty());
    }

    #[test]
    fn non_fasta_is_an_error_naming_the_file() {
        let err = FastaReader::from_reader("bad.txt", &b"MKT\n"[..]).unwrap_err();
        assert!(err.to_string().starts_with("bad.txt"), "{err}");
        let records = read(b"@r\nACGT\n+\nIIII\n");
        assert!(
            records[0]
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("FASTQ")
        );
    }

    #[test]
    fn tokenisation_errors_point_at_the_line() {
        let reader =
            FastaReader::from_reader("p.fa", &b">ok\nMKT\n>bad desc\nMKT\nLL-V\n"[..]).unwrap();
        let mut seen = Vec::new();
        let err: DataError = reader
            .for_each_tokenized(&Tokenizer::prot_bert(), |r, ids| {
                seen.push((r.id, ids.len()));
                Ok(())
            })
            .unwrap_err();
        assert_eq!(seen, vec![("ok".to_string(), 3)]);
        let message = err.to_string();
        assert!(message.starts_with("p.fa:5:"), "{message}");
        assert!(
            message.contains("'bad'") && message.contains("position 6"),
            "{message}"
        );
    }

    #[test]
    fn empty_records_are_errors() {
        let reader = FastaReader::from_reader("e.fa", &b">a\nMK\n>empty\n>c\nLL\n"[..]).unwrap();
        let err: DataError = reader
            .for_each_tokenized(&Tokenizer::prot_bert(), |_, _| Ok(()))
            .unwrap_err();
        assert!(err.to_string().starts_with("e.fa:3:"), "{err}");
        assert!(err.to_string().contains("empty"), "{err}");
    }
}
