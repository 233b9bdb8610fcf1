//! Bounds on what a peer can make this side buffer.

/// How large frames and messages may be. One value per connection; every
/// default is justified in its field's doc.
///
/// ```
/// let limits = courier_ws::Limits::default().max_message_size(16 << 20);
/// assert_eq!(limits.max_message_size, 16 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest payload of one incoming data frame, in bytes; a larger
    /// frame is refused from its header, before its payload is read. A
    /// frame is kept in the input buffer until all of it arrived, so this
    /// bounds that buffer too. Control frames are not counted: RFC 6455
    /// caps them at 125 bytes.
    ///
    /// Defaults to [`DEFAULT_MAX_MESSAGE_SIZE`] (4 MiB): a frame cannot
    /// carry more than its message, and one limit is easier to reason
    /// about. Lower it to bound the bytes buffered for one frame when
    /// messages are allowed to be larger than any single frame.
    pub max_frame_size: usize,
    /// Largest incoming message (all its fragments, after
    /// decompression), in bytes. Uncompressed fragments are refused from
    /// their header when they would pass it; compressed ones as soon as
    /// inflating them does.
    ///
    /// Defaults to [`DEFAULT_MAX_MESSAGE_SIZE`] (4 MiB), aiohttp's
    /// `max_msg_size` default: it keeps what one peer can make us buffer
    /// small, while real messages (chat, JSON updates) are far smaller.
    /// Raise it for bulk transfers.
    pub max_message_size: usize,
}

/// The default [`Limits::max_message_size`] and
/// [`Limits::max_frame_size`]: 4 MiB, as aiohttp's `max_msg_size`.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4 << 20;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        }
    }
}

impl Limits {
    /// Sets [`Limits::max_frame_size`].
    #[must_use]
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// Sets [`Limits::max_message_size`].
    #[must_use]
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }
}
