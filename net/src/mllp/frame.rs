//! MLLP framing: the decoder that finds whole frames in a connection's reused read buffer,
//! and the encoder that wraps a message for the wire.
//!
//! ```text
//! frame   = 0x0B  payload  0x1C 0x0D
//! payload = HL7 message bytes; never contains 0x0B, nor 0x1C directly followed by 0x0D
//! stream  = *( junk | frame )      junk: any bytes outside a frame, skipped and counted
//! ```
//!
//! Decoding follows mini-redis: first check that a whole frame is in the buffer, then hand
//! out a slice of it. An incomplete frame is `Ok(None)` (read more); a stream that ends
//! inside a frame is [`MllpError::TruncatedFrame`] (see [`FrameDecoder::finish`]).
//!
//! Invariants and limits:
//! - The buffer never holds more than `frame_bytes_max + 3` bytes (start block, payload,
//!   end block): a frame that cannot fit is [`MllpError::FrameTooLarge`] as soon as the
//!   limit is passed, with nothing buffered past it.
//! - Every byte is searched once: on a frame that arrives one byte at a time the search
//!   resumes where it stopped (`scan`), so decoding stays linear.
//! - A start block inside a frame means the sender gave up on the frame it had begun (a
//!   sender that timed out and started again): the abandoned bytes are counted as junk
//!   and the frame restarts there.
//! - A 0x1C not followed by 0x0D is payload.
//! - After an error the decoder must not be used again: the connection is closed.
//! - A decoder made [`with_account`](FrameDecoder::with_account) reserves every byte of
//!   its buffer from that [`BufferAccount`] before allocating it and gives it back when the
//!   buffer shrinks ([`give_back`](FrameDecoder::give_back)) or the decoder is dropped; it
//!   allocates nothing until the first read.

use memchr::{memchr, memchr2, memmem};

use crate::error::MllpError;
use crate::tcp::limits::{BufferAccount, InboundBudget};

/// Start of a frame (VT).
pub const START_BLOCK: u8 = 0x0B;
/// First byte of the end of a frame (FS).
pub const END_BLOCK: u8 = 0x1C;
/// Second byte of the end of a frame (CR).
pub const CARRIAGE_RETURN: u8 = 0x0D;
/// The default largest payload accepted: 64 MiB.
pub const FRAME_BYTES_MAX_DEFAULT: usize = 64 << 20;
/// The first size of a connection's read buffer (it grows, up to the frame limit, only for
/// frames bigger than this).
pub const READ_BUFFER_BYTES_INITIAL: usize = 64 << 10;
/// A read is never offered less spare room than this while the buffer could be compacted.
const READ_BYTES_MIN: usize = 4 << 10;

/// Finds MLLP frames in a byte stream read into its own reused buffer.
///
/// Use: [`read_buf`](Self::read_buf) → read from the socket into it →
/// [`commit`](Self::commit) the count → call [`next_frame`](Self::next_frame) until it gives
/// `Ok(None)` → read again; at end of stream call [`finish`](Self::finish).
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// First byte not yet consumed. When `in_frame`, `buf[head]` is the start block.
    head: usize,
    /// End of the bytes read.
    tail: usize,
    /// Inside a frame: the next byte to search for a start or end block.
    scan: usize,
    in_frame: bool,
    frame_bytes_max: usize,
    /// Stream offset of `buf[0]`.
    stream_base: u64,
    junk_bytes: u64,
    frames: u64,
    /// Where the buffer's bytes are reserved (`None`: not accounted).
    budget: Option<BufferAccount>,
}

impl FrameDecoder {
    /// A decoder accepting payloads of at most `frame_bytes_max` bytes (at least 1; the
    /// default is [`FRAME_BYTES_MAX_DEFAULT`]).
    pub fn new(frame_bytes_max: usize) -> Self {
        let frame_bytes_max = frame_bytes_max.max(1);
        let initial = READ_BUFFER_BYTES_INITIAL.min(Self::buffer_bytes_cap(frame_bytes_max));
        Self {
            buf: vec![0; initial],
            head: 0,
            tail: 0,
            scan: 0,
            in_frame: false,
            frame_bytes_max,
            stream_base: 0,
            junk_bytes: 0,
            frames: 0,
            budget: None,
        }
    }

    /// A decoder whose buffer is reserved through `account` (see the module doc); it
    /// holds no buffer until [`make_room`](Self::make_room) first succeeds.
    pub fn with_account(frame_bytes_max: usize, account: BufferAccount) -> Self {
        let mut decoder = Self::new(frame_bytes_max);
        decoder.buf = Vec::new();
        decoder.budget = Some(account);
        decoder
    }

    /// [`with_account`](Self::with_account) charging `budget` alone.
    pub fn with_budget(frame_bytes_max: usize, budget: InboundBudget) -> Self {
        Self::with_account(frame_bytes_max, BufferAccount::new(budget, None))
    }

    /// Bytes of buffer held now (what the budget counts for this decoder).
    pub fn buffer_bytes(&self) -> usize {
        self.buf.len()
    }

    fn buffer_bytes_cap(frame_bytes_max: usize) -> usize {
        frame_bytes_max.saturating_add(3)
    }

    /// The configured largest payload.
    pub fn frame_bytes_max(&self) -> usize {
        self.frame_bytes_max
    }

    /// Bytes skipped outside frames so far.
    pub fn junk_bytes(&self) -> u64 {
        self.junk_bytes
    }

    /// Frames decoded so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Whether a start block has been seen and its frame is not complete yet.
    pub fn in_frame(&self) -> bool {
        self.in_frame
    }

    /// Bytes read and not yet consumed (an incomplete frame, or undecoded frames).
    pub fn buffered_bytes(&self) -> usize {
        self.tail - self.head
    }

    /// The payload bytes of the incomplete frame held so far (empty outside a frame). After
    /// [`MllpError::FrameTooLarge`] this is the start of the oversize message, enough to
    /// find its control id for the NAK.
    pub fn partial_payload(&self) -> &[u8] {
        if self.in_frame {
            &self.buf[self.head + 1..self.tail]
        } else {
            &[]
        }
    }

    /// The next whole frame's payload, a slice of the buffer valid until the next call to
    /// [`read_buf`](Self::read_buf); `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, MllpError> {
        loop {
            if !self.in_frame && !self.skip_to_start_block() {
                return Ok(None);
            }
            let Some(found) = memchr2(START_BLOCK, END_BLOCK, &self.buf[self.scan..self.tail])
            else {
                self.scan = self.tail;
                self.check_limit(self.tail - self.head - 1)?;
                return Ok(None);
            };
            let at = self.scan + found;
            if self.buf[at] == START_BLOCK {
                self.junk_bytes += (at - self.head) as u64;
                self.head = at;
                self.scan = at + 1;
                continue;
            }
            let payload_bytes = at - self.head - 1;
            self.check_limit(payload_bytes)?;
            if at + 1 == self.tail {
                self.scan = at;
                return Ok(None);
            }
            if self.buf[at + 1] != CARRIAGE_RETURN {
                self.scan = at + 1;
                continue;
            }
            let start = self.head + 1;
            self.head = at + 2;
            self.in_frame = false;
            self.frames += 1;
            return Ok(Some(&self.buf[start..at]));
        }
    }

    /// Moves `head` to the next start block, counting what it skips; false when none is
    /// buffered (everything read so far was junk and is dropped).
    fn skip_to_start_block(&mut self) -> bool {
        match memchr(START_BLOCK, &self.buf[self.head..self.tail]) {
            Some(skipped) => {
                self.junk_bytes += skipped as u64;
                self.head += skipped;
                self.scan = self.head + 1;
                self.in_frame = true;
                true
            }
            None => {
                self.junk_bytes += (self.tail - self.head) as u64;
                self.head = self.tail;
                false
            }
        }
    }

    fn check_limit(&self, payload_bytes: usize) -> Result<(), MllpError> {
        if payload_bytes > self.frame_bytes_max {
            return Err(MllpError::FrameTooLarge {
                frame_bytes_max: self.frame_bytes_max,
                buffered_bytes: payload_bytes,
                stream_offset: self.stream_base + self.head as u64,
            });
        }
        Ok(())
    }

    /// Makes spare room to read into: consumed bytes are reclaimed first, and the buffer
    /// is allocated or grows (doubling, up to the frame limit) only when a frame needs it.
    /// False when the budget cannot cover the growth (nothing changed; try again later).
    pub fn make_room(&mut self) -> bool {
        if self.head == self.tail {
            self.reset_empty();
        } else if self.head > 0 && self.buf.len() - self.tail < READ_BYTES_MIN {
            self.compact();
        }
        if self.tail < self.buf.len() {
            return true;
        }
        let cap = Self::buffer_bytes_cap(self.frame_bytes_max);
        let grown = match self.buf.len() {
            0 => READ_BUFFER_BYTES_INITIAL.min(cap),
            len => len.saturating_mul(2).min(cap),
        };
        let added = grown - self.buf.len();
        if let Some(budget) = &self.budget
            && !budget.try_reserve(added)
        {
            return false;
        }
        self.buf.reserve_exact(added);
        self.buf.resize(grown, 0);
        true
    }

    /// Spare room to read into (never empty). On a decoder with a budget, call only after
    /// [`make_room`](Self::make_room) returned true.
    pub fn read_buf(&mut self) -> &mut [u8] {
        let room = self.make_room();
        assert!(
            room,
            "read_buf without room: make_room was refused by the budget"
        );
        // next_frame fails a frame whose payload passes the limit, and the cap leaves room
        // for the largest allowed frame, so a full buffer at the cap cannot be waiting here.
        assert!(self.tail < self.buf.len(), "read buffer full at its cap");
        &mut self.buf[self.tail..]
    }

    /// Between frames with nothing buffered, shrinks the buffer to `keep_bytes` (0 frees
    /// it), giving the difference back to the budget; otherwise does nothing. For a buffer
    /// that grew for a large frame, and for a connection gone idle.
    pub fn give_back(&mut self, keep_bytes: usize) {
        if self.in_frame || self.head != self.tail || self.buf.len() <= keep_bytes {
            return;
        }
        self.reset_empty();
        let freed = self.buf.len() - keep_bytes;
        self.buf.truncate(keep_bytes);
        self.buf.shrink_to_fit();
        if let Some(budget) = &self.budget {
            budget.release(freed);
        }
    }

    /// Records that `bytes_read` bytes were written at the start of [`read_buf`](Self::read_buf).
    pub fn commit(&mut self, bytes_read: usize) {
        assert!(
            self.tail + bytes_read <= self.buf.len(),
            "commit past the read buffer"
        );
        self.tail += bytes_read;
    }

    /// Copies `bytes` in (for callers that already hold the bytes, such as tests and
    /// in-memory peers); the caller drains frames between calls as with a socket.
    pub fn push(&mut self, mut bytes: &[u8]) -> usize {
        let mut copied = 0;
        while !bytes.is_empty() {
            let spare = self.read_buf();
            let n = spare.len().min(bytes.len());
            spare[..n].copy_from_slice(&bytes[..n]);
            self.commit(n);
            copied += n;
            bytes = &bytes[n..];
            if self.tail == self.buf.len() {
                break;
            }
        }
        copied
    }

    /// The stream ended: an error if it ended inside a frame.
    pub fn finish(&self) -> Result<(), MllpError> {
        if self.in_frame {
            return Err(MllpError::TruncatedFrame {
                buffered_bytes: self.tail - self.head - 1,
                stream_offset: self.stream_base + self.head as u64,
            });
        }
        Ok(())
    }

    /// Forgets everything buffered (a connection reset), keeping the buffer's memory.
    pub fn clear(&mut self) {
        self.reset_empty();
        self.in_frame = false;
    }

    fn reset_empty(&mut self) {
        self.stream_base += self.tail as u64;
        self.head = 0;
        self.tail = 0;
        self.scan = 0;
    }

    fn compact(&mut self) {
        let head = self.head;
        self.buf.copy_within(head..self.tail, 0);
        self.stream_base += head as u64;
        self.tail -= head;
        self.scan = self.scan.saturating_sub(head);
        self.head = 0;
    }
}

impl Drop for FrameDecoder {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.release(self.buf.len());
        }
    }
}

/// Appends `0x0B msg 0x1C 0x0D` to `out` (a reused buffer: `out` is not cleared).
pub fn encode_frame(out: &mut Vec<u8>, msg: &[u8]) {
    out.reserve(msg.len() + 3);
    out.push(START_BLOCK);
    out.extend_from_slice(msg);
    out.push(END_BLOCK);
    out.push(CARRIAGE_RETURN);
}

/// Checks that `msg` can travel in one frame: not empty, no start block, no end sequence.
pub fn check_payload(msg: &[u8]) -> Result<(), MllpError> {
    if msg.is_empty() {
        return Err(MllpError::InvalidMessage {
            reason: "empty message",
        });
    }
    if memchr(START_BLOCK, msg).is_some() {
        return Err(MllpError::InvalidMessage {
            reason: "message contains the start block byte 0x0B",
        });
    }
    if memmem::find(msg, &[END_BLOCK, CARRIAGE_RETURN]).is_some() {
        return Err(MllpError::InvalidMessage {
            reason: "message contains the end block 0x1C 0x0D",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Feeds `chunks` one at a time and returns every frame and the final state.
    fn decode_chunks(dec: &mut FrameDecoder, chunks: &[&[u8]]) -> Result<Vec<Vec<u8>>, MllpError> {
        let mut frames = Vec::new();
        for chunk in chunks {
            let mut rest: &[u8] = chunk;
            while !rest.is_empty() {
                let n = dec.push(rest);
                rest = &rest[n..];
                while let Some(frame) = dec.next_frame()? {
                    frames.push(frame.to_vec());
                }
            }
        }
        Ok(frames)
    }

    fn wire(frames: &[Vec<u8>], junk: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            if let Some(j) = junk.get(i) {
                out.extend_from_slice(j);
            }
            encode_frame(&mut out, f);
        }
        out
    }

    fn cut<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut last = 0;
        for p in points.into_iter().chain([bytes.len()]) {
            chunks.push(&bytes[last..p]);
            last = p;
        }
        chunks
    }

    fn payload() -> impl Strategy<Value = Vec<u8>> {
        // Any byte but the start block; an end block byte is replaced by "0x1C x" so the
        // payload keeps lone 0x1C bytes (legal) but never the end sequence.
        proptest::collection::vec(any::<u8>(), 1..600).prop_map(|mut v| {
            for b in v.iter_mut() {
                if *b == START_BLOCK {
                    *b = b'x';
                }
            }
            for i in 0..v.len() {
                if v[i] == END_BLOCK && v.get(i + 1) == Some(&CARRIAGE_RETURN) {
                    v[i + 1] = b'x';
                }
            }
            v
        })
    }

    fn junk() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            any::<u8>().prop_filter("no start block", |b| *b != START_BLOCK),
            0..20,
        )
    }

    proptest! {
        #[test]
        fn frames_cut_at_random_points_decode_to_the_same_frames(
            frames in proptest::collection::vec(payload(), 1..12),
            cuts in proptest::collection::vec(any::<usize>(), 0..40),
        ) {
            let bytes = wire(&frames, &[]);
            let mut dec = FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT);
            let got = decode_chunks(&mut dec, &cut(&bytes, &cuts)).unwrap();
            prop_assert_eq!(&got, &frames);
            prop_assert_eq!(dec.junk_bytes(), 0);
            prop_assert!(dec.finish().is_ok());
        }

        #[test]
        fn junk_before_frames_is_skipped_and_counted(
            frames in proptest::collection::vec(payload(), 1..8),
            junk in proptest::collection::vec(junk(), 1..8),
            trailing in junk(),
            cuts in proptest::collection::vec(any::<usize>(), 0..30),
        ) {
            let mut bytes = wire(&frames, &junk);
            bytes.extend_from_slice(&trailing);
            let expected_junk: usize =
                junk.iter().take(frames.len()).map(Vec::len).sum::<usize>() + trailing.len();
            let mut dec = FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT);
            let got = decode_chunks(&mut dec, &cut(&bytes, &cuts)).unwrap();
            prop_assert_eq!(&got, &frames);
            prop_assert_eq!(dec.junk_bytes(), expected_junk as u64);
            prop_assert!(dec.finish().is_ok());
        }

        #[test]
        fn oversize_frame_fails_without_buffering_past_the_limit(
            max in 1usize..300,
            extra in 1usize..300,
            cuts in proptest::collection::vec(any::<usize>(), 0..20),
        ) {
            let big = vec![b'A'; max + extra];
            let bytes = wire(&[b"MSH|ok".to_vec(), big], &[]);
            let mut dec = FrameDecoder::new(max.max(6));
            let result = decode_chunks(&mut dec, &cut(&bytes, &cuts));
            if max + extra > max.max(6) {
                let is_too_large = matches!(result, Err(MllpError::FrameTooLarge { .. }));
                prop_assert!(is_too_large);
                prop_assert!(dec.buffered_bytes() <= max.max(6) + 3);
            } else {
                prop_assert_eq!(result.unwrap().len(), 2);
            }
        }

        #[test]
        fn eof_in_the_middle_of_a_frame_is_reported(
            frames in proptest::collection::vec(payload(), 1..6),
            keep in any::<usize>(),
        ) {
            let bytes = wire(&frames, &[]);
            let last_start = bytes.len() - frames.last().unwrap().len() - 3;
            // Keep at least the last start block and never its complete end sequence.
            let keep = last_start + 1 + keep % (bytes.len() - 1 - last_start);
            let mut dec = FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT);
            let got = decode_chunks(&mut dec, &[&bytes[..keep]]).unwrap();
            prop_assert_eq!(got.len(), frames.len() - 1);
            let is_truncated = matches!(dec.finish(), Err(MllpError::TruncatedFrame { .. }));
            prop_assert!(is_truncated);
        }

        #[test]
        fn arbitrary_bytes_never_panic_the_decoder(
            bytes in proptest::collection::vec(any::<u8>(), 0..2000),
            max in 1usize..200,
            cuts in proptest::collection::vec(any::<usize>(), 0..20),
        ) {
            let mut dec = FrameDecoder::new(max);
            let _ = decode_chunks(&mut dec, &cut(&bytes, &cuts));
            let _ = dec.finish();
        }
    }

    #[test]
    fn many_frames_in_one_read_all_come_out() {
        let mut dec = FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT);
        let bytes = wire(&[b"A".to_vec(), b"BB".to_vec(), b"CCC".to_vec()], &[]);
        let got = decode_chunks(&mut dec, &[&bytes]).unwrap();
        assert_eq!(got, vec![b"A".to_vec(), b"BB".to_vec(), b"CCC".to_vec()]);
        assert_eq!(dec.frames(), 3);
    }

    #[test]
    fn one_byte_at_a_time_decodes_a_frame_once_complete() {
        let mut dec = FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT);
        let bytes = wire(&[b"MSH|^~\\&|A".to_vec()], &[]);
        for (i, b) in bytes.iter().enumerate() {
            dec.push(std::slice::from_ref(b));
            let frame = dec.next_frame().unwrap().map(<[u8]>::to_vec);
            assert_eq!(frame.is_some(), i == bytes.len() - 1);
        }
    }

    #[test]
    fn start_block_inside_a_frame_restarts_it_and_counts_the_abandoned_bytes() {
        let mut dec = FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT);
        let got = decode_chunks(&mut dec, &[b"\x0bMSH|half\x0bMSH|whole\x1c\x0d"]).unwrap();
        assert_eq!(got, vec![b"MSH|whole".to_vec()]);
        assert_eq!(dec.junk_bytes(), 9);
    }

    #[test]
    fn lone_end_block_byte_is_payload() {
        let mut dec = FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT);
        let got = decode_chunks(&mut dec, &[b"\x0bA\x1cB\x1c\x0d"]).unwrap();
        assert_eq!(got, vec![b"A\x1cB".to_vec()]);
    }

    #[test]
    fn oversize_error_names_the_limit_and_keeps_the_message_start() {
        let mut dec = FrameDecoder::new(10);
        let err = decode_chunks(&mut dec, &[b"\x0bMSH|^~\\&|0123456789"]).unwrap_err();
        assert!(
            matches!(
                err,
                MllpError::FrameTooLarge {
                    frame_bytes_max: 10,
                    ..
                }
            ),
            "{err}"
        );
        assert!(dec.partial_payload().starts_with(b"MSH|^~\\&|"));
    }

    #[test]
    fn a_budgeted_decoder_reserves_its_buffer_and_gives_it_back() {
        let budget = InboundBudget::new(READ_BUFFER_BYTES_INITIAL * 2);
        let mut dec = FrameDecoder::with_budget(FRAME_BYTES_MAX_DEFAULT, budget.clone());
        assert_eq!(
            (dec.buffer_bytes(), budget.held()),
            (0, 0),
            "nothing before a read"
        );
        assert!(dec.make_room());
        assert_eq!(budget.held(), READ_BUFFER_BYTES_INITIAL);
        // A frame that needs the buffer to double past the budget: refused, unchanged.
        let mut partial = vec![START_BLOCK];
        partial.resize(READ_BUFFER_BYTES_INITIAL, b'A');
        assert_eq!(dec.push(&partial), partial.len());
        assert_eq!(dec.next_frame().unwrap(), None);
        assert!(dec.make_room(), "doubling to twice the initial size fits");
        let spare = dec.read_buf().len();
        dec.commit(spare);
        assert_eq!(dec.next_frame().unwrap(), None);
        assert!(!dec.make_room(), "four times the initial size does not fit");
        assert_eq!(budget.held(), READ_BUFFER_BYTES_INITIAL * 2);
        dec.give_back(0);
        assert_eq!(
            budget.held(),
            READ_BUFFER_BYTES_INITIAL * 2,
            "not while in a frame"
        );
        dec.clear();
        dec.give_back(READ_BUFFER_BYTES_INITIAL);
        assert_eq!(budget.held(), READ_BUFFER_BYTES_INITIAL);
        drop(dec);
        assert_eq!(budget.held(), 0, "dropping the decoder gives the rest back");
    }

    #[test]
    fn payload_check_rejects_what_would_cut_a_frame() {
        assert!(check_payload(b"MSH|ok").is_ok());
        assert!(check_payload(b"").is_err());
        assert!(check_payload(b"MSH|\x0b").is_err());
        assert!(check_payload(b"MSH|\x1c\x0d").is_err());
        assert!(check_payload(b"MSH|\x1c").is_ok());
    }
}
