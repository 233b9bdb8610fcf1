//! Request body encoding: fixed length, chunked, optionally compressed.

use crate::coding::{Compression, Compressor};
use crate::error::Error;

/// How a request body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Framing {
    /// No body.
    #[default]
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`, chunks of at most `max_chunk` bytes.
    Chunked { max_chunk: usize },
}

/// Frames (and optionally compresses) request body data into output bytes.
///
/// Obtained from [`Exchange`](crate::Exchange) in the `SendBody` state, or
/// built directly for a fixed length or chunked body.
///
/// ```
/// use courier_proto::BodyEncoder;
/// let mut encoder = BodyEncoder::chunked(4);
/// let mut out = Vec::new();
/// encoder.write(b"hello", &mut out).unwrap();
/// encoder.finish(&mut out).unwrap();
/// assert_eq!(out, b"4\r\nhell\r\n1\r\no\r\n0\r\n\r\n");
/// ```
#[derive(Debug)]
pub struct BodyEncoder {
    framing: Framing,
    /// Body bytes (after compression) still allowed under `Content-Length`.
    remaining: u64,
    compressor: Option<Compressor>,
    scratch: Vec<u8>,
    finished: bool,
}

impl BodyEncoder {
    pub(crate) fn new(framing: Framing, compression: Option<Compression>) -> Result<Self, Error> {
        let compressor = compression.map(Compressor::new).transpose()?;
        Ok(BodyEncoder {
            framing,
            remaining: match framing {
                Framing::Length(n) => n,
                _ => 0,
            },
            compressor,
            scratch: Vec::new(),
            finished: false,
        })
    }

    /// An encoder for a body of exactly `length` bytes (no framing bytes).
    pub fn with_length(length: u64) -> BodyEncoder {
        BodyEncoder {
            framing: Framing::Length(length),
            remaining: length,
            compressor: None,
            scratch: Vec::new(),
            finished: false,
        }
    }

    /// A chunked encoder writing chunks of at most `max_chunk` bytes
    /// (`usize::MAX`: one chunk per write). A `max_chunk` of 0 is taken as 1.
    pub fn chunked(max_chunk: usize) -> BodyEncoder {
        BodyEncoder {
            framing: Framing::Chunked {
                max_chunk: max_chunk.max(1),
            },
            remaining: 0,
            compressor: None,
            scratch: Vec::new(),
            finished: false,
        }
    }

    /// True when the body is chunked.
    pub fn is_chunked(&self) -> bool {
        matches!(self.framing, Framing::Chunked { .. })
    }

    /// Bytes still owed under `Content-Length` framing (`None` otherwise).
    pub fn remaining(&self) -> Option<u64> {
        match self.framing {
            Framing::Length(_) => Some(self.remaining),
            _ => None,
        }
    }

    /// True when the bytes on the wire are the data bytes themselves: a
    /// `Content-Length` body without compression. The caller may then send
    /// data straight from its own buffers and only account for it with
    /// [`write_direct`](Self::write_direct), saving a copy.
    pub fn is_direct(&self) -> bool {
        matches!(self.framing, Framing::Length(_)) && self.compressor.is_none()
    }

    /// Accounts for `len` data bytes the caller sends itself (see
    /// [`is_direct`](Self::is_direct)).
    ///
    /// ```
    /// use courier_proto::BodyEncoder;
    /// let mut encoder = BodyEncoder::with_length(5);
    /// assert!(encoder.is_direct());
    /// encoder.write_direct(5).unwrap(); // the caller wrote b"hello" itself
    /// assert!(encoder.write_direct(1).is_err());
    /// encoder.finish(&mut Vec::new()).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::BodyTooLong`] past the declared length (nothing is
    /// accounted then); [`Error::OutOfOrder`] when the body is not direct
    /// or is finished.
    pub fn write_direct(&mut self, len: usize) -> Result<(), Error> {
        if self.finished || !self.is_direct() {
            return Err(Error::OutOfOrder(
                "direct write on a framed or finished body",
            ));
        }
        if len as u64 > self.remaining {
            return Err(Error::BodyTooLong);
        }
        self.remaining -= len as u64;
        Ok(())
    }

    /// True once [`finish`](Self::finish) succeeded.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Appends `data`, compressed if asked and framed, to `out`.
    ///
    /// An empty `data` writes nothing (it never ends a chunked body early).
    ///
    /// # Errors
    ///
    /// [`Error::BodyTooLong`] when `data` would exceed the declared length
    /// (nothing is written then); [`Error::OutOfOrder`] after `finish`.
    pub fn write(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if self.finished {
            return Err(Error::OutOfOrder("body written after finish"));
        }
        if data.is_empty() {
            return Ok(());
        }
        match self.compressor.as_mut() {
            Some(compressor) => {
                let mut scratch = std::mem::take(&mut self.scratch);
                scratch.clear();
                let result = compressor
                    .compress(data, &mut scratch)
                    .and_then(|()| self.frame(&scratch, out));
                self.scratch = scratch;
                result
            }
            None => self.frame(data, out),
        }
    }

    /// Ends the body: flushes the compressor and writes the last chunk.
    ///
    /// # Errors
    ///
    /// [`Error::BodyTooShort`] when fewer bytes than the declared length were written.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.finished {
            return Ok(());
        }
        if let Some(compressor) = self.compressor.as_mut() {
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            let result = compressor
                .finish(&mut scratch)
                .and_then(|()| self.frame(&scratch, out));
            self.scratch = scratch;
            result?;
        }
        match self.framing {
            Framing::Length(_) if self.remaining > 0 => return Err(Error::BodyTooShort),
            Framing::Chunked { .. } => out.extend_from_slice(b"0\r\n\r\n"),
            _ => {}
        }
        self.finished = true;
        Ok(())
    }

    fn frame(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if data.is_empty() {
            return Ok(());
        }
        match self.framing {
            Framing::None => Err(Error::BodyTooLong),
            Framing::Length(_) => {
                if data.len() as u64 > self.remaining {
                    return Err(Error::BodyTooLong);
                }
                self.remaining -= data.len() as u64;
                out.extend_from_slice(data);
                Ok(())
            }
            Framing::Chunked { max_chunk } => {
                out.reserve(data.len() + (data.len() / max_chunk + 1) * 20);
                for chunk in data.chunks(max_chunk) {
                    write_hex(chunk.len(), out);
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                }
                Ok(())
            }
        }
    }
}

/// Appends `n` in lowercase hexadecimal, without leading zeros.
fn write_hex(n: usize, out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = DIGITS[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_length_bodies_are_direct() {
        assert!(!BodyEncoder::chunked(16).is_direct());
        assert!(BodyEncoder::chunked(16).write_direct(1).is_err());
        #[cfg(feature = "compression")]
        {
            let framing = Framing::Length(4);
            assert!(
                !BodyEncoder::new(framing, Some(Compression::Gzip))
                    .unwrap()
                    .is_direct()
            );
        }
        let mut encoder = BodyEncoder::with_length(4);
        encoder.write_direct(3).unwrap();
        assert_eq!(encoder.remaining(), Some(1));
        assert_eq!(encoder.write_direct(2), Err(Error::BodyTooLong));
        assert_eq!(encoder.remaining(), Some(1), "nothing accounted on error");
        assert_eq!(encoder.finish(&mut Vec::new()), Err(Error::BodyTooShort));
    }

    #[test]
    fn hex() {
        for (n, s) in [(0, "0"), (9, "9"), (10, "a"), (255, "ff"), (4096, "1000")] {
            let mut out = Vec::new();
            write_hex(n, &mut out);
            assert_eq!(out, s.as_bytes());
        }
        let mut out = Vec::new();
        write_hex(usize::MAX, &mut out);
        assert_eq!(out, format!("{:x}", usize::MAX).as_bytes());
    }

    #[test]
    fn fixed_length_is_enforced() {
        let mut e = BodyEncoder::with_length(5);
        let mut out = Vec::new();
        e.write(b"abc", &mut out).unwrap();
        assert_eq!(e.remaining(), Some(2));
        assert_eq!(e.write(b"def", &mut out), Err(Error::BodyTooLong));
        assert_eq!(out, b"abc", "a refused write writes nothing");
        assert_eq!(e.finish(&mut out), Err(Error::BodyTooShort));
        e.write(b"de", &mut out).unwrap();
        e.finish(&mut out).unwrap();
        assert_eq!(out, b"abcde");
        assert!(e.write(b"x", &mut out).is_err());
    }

    #[test]
    fn chunked_splits_and_skips_empty_writes() {
        let mut e = BodyEncoder::chunked(usize::MAX);
        let mut out = Vec::new();
        e.write(b"", &mut out).unwrap();
        assert!(out.is_empty(), "an empty write must not end the body");
        e.write(&[b'x'; 300], &mut out).unwrap();
        e.finish(&mut out).unwrap();
        let mut expected = b"12c\r\n".to_vec();
        expected.extend_from_slice(&[b'x'; 300]);
        expected.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(out, expected);
    }

    #[test]
    fn no_body_refuses_data() {
        let mut e = BodyEncoder::new(Framing::None, None).unwrap();
        let mut out = Vec::new();
        assert_eq!(e.write(b"x", &mut out), Err(Error::BodyTooLong));
        e.finish(&mut out).unwrap();
        assert!(out.is_empty());
    }
}
