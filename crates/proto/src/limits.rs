//! Every bound this crate puts on input from the network, in one place.

/// Bounds on what a peer may send, each with a documented default.
///
/// Exceeding one is an [`Error::LimitExceeded`](crate::Error::LimitExceeded)
/// naming the [`Limit`](crate::Limit), never a panic or unbounded growth. The
/// defaults are generous for real servers and small enough that a hostile one
/// cannot make a client hold more than a few hundred KiB per connection.
///
/// ```
/// use courier_proto::Limits;
/// let limits = Limits::default().max_headers(200).max_head_bytes(128 * 1024);
/// assert_eq!(limits.max_headers, 200);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest response head (status line, header lines and the empty line,
    /// plus any empty lines before the status line), in bytes.
    ///
    /// Defaults to 64 KiB. Servers reject request heads above 8–16 KiB
    /// (nginx 8 KiB per line, node 16 KiB total), but responses carry more:
    /// many `Set-Cookie` and CSP headers push real heads past 16 KiB, while
    /// hyper's client accepts ~400 KiB. 64 KiB keeps every real head we know
    /// of and caps what a peer can make us buffer before a body starts.
    pub max_head_bytes: usize,
    /// Most header fields in one head or one trailer section.
    ///
    /// Defaults to 100, as hyper's client: real responses carry 10–40.
    pub max_headers: usize,
    /// Longest single line in a head (the status line or one header field
    /// line, without its line ending), in bytes.
    ///
    /// Defaults to 8190, aiohttp's `max_line_size`/`max_field_size` and
    /// Apache's `LimitRequestFieldSize`: the common ceiling any server
    /// software already respects.
    pub max_header_line: usize,
    /// Total bytes of chunk extensions (everything between a chunk size and
    /// its CRLF) accepted over one chunked body.
    ///
    /// Defaults to 16 KiB, as hyper. Extensions carry no meaning for this
    /// client; the bound stops a peer from feeding extensions forever while
    /// sending no data.
    pub max_chunk_ext_bytes: usize,
    /// Largest trailer section of a chunked body, in bytes.
    ///
    /// Defaults to 16 KiB, as hyper. Trailers are rare and small
    /// (checksums, timing); they are buffered whole to be parsed.
    pub max_trailer_bytes: usize,
    /// Most informational (1xx) responses skipped before the final one.
    ///
    /// Defaults to 32. `103 Early Hints` may repeat, but a server that sends
    /// endless interim responses is stalling, not informing.
    pub max_informational: usize,
    /// Largest ratio of decoded to encoded bytes a compressed body may reach
    /// once it has decoded more than [`decode_ratio_grace`](Self::decode_ratio_grace) bytes.
    ///
    /// Defaults to 100. Text and JSON compress 3–20x; a deflate bomb reaches
    /// about 1000x. Raise it for downloads of very sparse data.
    pub max_decode_ratio: u64,
    /// Decoded bytes that may be produced before
    /// [`max_decode_ratio`](Self::max_decode_ratio) is enforced, so that
    /// small, highly compressible bodies (a page of spaces) always decode.
    ///
    /// Defaults to 1 MiB.
    pub decode_ratio_grace: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 64 * 1024,
            max_headers: 100,
            max_header_line: 8190,
            max_chunk_ext_bytes: 16 * 1024,
            max_trailer_bytes: 16 * 1024,
            max_informational: 32,
            max_decode_ratio: 100,
            decode_ratio_grace: 1024 * 1024,
        }
    }
}

impl Limits {
    /// Sets [`max_head_bytes`](Self::max_head_bytes). Defaults to 64 KiB.
    pub fn max_head_bytes(mut self, bytes: usize) -> Self {
        self.max_head_bytes = bytes;
        self
    }

    /// Sets [`max_headers`](Self::max_headers). Defaults to 100.
    pub fn max_headers(mut self, count: usize) -> Self {
        self.max_headers = count;
        self
    }

    /// Sets [`max_header_line`](Self::max_header_line). Defaults to 8190.
    pub fn max_header_line(mut self, bytes: usize) -> Self {
        self.max_header_line = bytes;
        self
    }

    /// Sets [`max_chunk_ext_bytes`](Self::max_chunk_ext_bytes). Defaults to 16 KiB.
    pub fn max_chunk_ext_bytes(mut self, bytes: usize) -> Self {
        self.max_chunk_ext_bytes = bytes;
        self
    }

    /// Sets [`max_trailer_bytes`](Self::max_trailer_bytes). Defaults to 16 KiB.
    pub fn max_trailer_bytes(mut self, bytes: usize) -> Self {
        self.max_trailer_bytes = bytes;
        self
    }

    /// Sets [`max_informational`](Self::max_informational). Defaults to 32.
    pub fn max_informational(mut self, count: usize) -> Self {
        self.max_informational = count;
        self
    }

    /// Sets [`max_decode_ratio`](Self::max_decode_ratio). Defaults to 100.
    pub fn max_decode_ratio(mut self, ratio: u64) -> Self {
        self.max_decode_ratio = ratio;
        self
    }

    /// Sets [`decode_ratio_grace`](Self::decode_ratio_grace). Defaults to 1 MiB.
    pub fn decode_ratio_grace(mut self, bytes: u64) -> Self {
        self.decode_ratio_grace = bytes;
        self
    }
}
