//! Encoding: [`Packet`]s to bytes at a protocol level. Lengths are computed first, then
//! the fixed header and the body are written straight into the destination buffer.
//!
//! Fields that a level does not have (properties and reason codes before 5.0) are left
//! out; a packet that cannot be expressed at the level is [`EncodeError::Invalid`].

mod packets;
mod properties;
mod shared;

use bytes::{BufMut, BytesMut};

use super::decode::MAX_REMAINING_LENGTH;
use super::error::EncodeError;
use super::packet::Packet;
use super::types::ProtocolVersion;

pub use shared::EncodedPublish;

/// The computed lengths of a packet: its remaining length and the lengths of its
/// property blocks (without their own length prefix).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Sizes {
    pub(super) remaining: usize,
    pub(super) props: usize,
    pub(super) will_props: usize,
}

/// The exact number of bytes `packet` takes on the wire at `version`, fixed header
/// included. `usize::MAX` when the packet cannot be encoded (so it exceeds any maximum
/// packet size). CONNECT is sized at the level it declares.
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> usize {
    match packets::sizes(packet, version) {
        Ok(s) => 1 + varint_len(s.remaining) + s.remaining,
        Err(_) => usize::MAX,
    }
}

/// Appends `packet` encoded for `version` to `dst`. CONNECT is encoded at the level it
/// declares (`Connect::protocol`), whatever `version` says. Nothing is written on error.
pub fn encode_packet(
    packet: &Packet,
    version: ProtocolVersion,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    let sizes = packets::sizes(packet, version)?;
    dst.reserve(1 + varint_len(sizes.remaining) + sizes.remaining);
    dst.put_u8(packets::first_byte(packet));
    put_varint(dst, sizes.remaining);
    packets::put_body(packet, version, sizes, dst);
    Ok(())
}

/// Fails with [`EncodeError::TooLarge`] past the largest remaining length.
pub(super) fn check_remaining(n: usize) -> Result<usize, EncodeError> {
    if n > MAX_REMAINING_LENGTH {
        return Err(EncodeError::TooLarge(
            "remaining length over 268,435,455 bytes",
        ));
    }
    Ok(n)
}

/// Bytes of a variable byte integer holding `v` (at most 268,435,455).
pub(super) fn varint_len(v: usize) -> usize {
    match v {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

pub(super) fn put_varint(dst: &mut BytesMut, mut v: usize) {
    loop {
        let byte = (v & 0x7F) as u8;
        v >>= 7;
        if v == 0 {
            dst.put_u8(byte);
            return;
        }
        dst.put_u8(byte | 0x80);
    }
}

/// Bytes of a UTF-8 string field: the two byte length and the string.
pub(super) fn str_len(s: &str) -> Result<usize, EncodeError> {
    bin_len(s.as_bytes())
}

/// Bytes of a binary data field: the two byte length and the data.
pub(super) fn bin_len(b: &[u8]) -> Result<usize, EncodeError> {
    if b.len() > usize::from(u16::MAX) {
        return Err(EncodeError::TooLarge(
            "string or binary field over 65,535 bytes",
        ));
    }
    Ok(2 + b.len())
}

/// Writes a string whose length was checked by [`str_len`].
pub(super) fn put_str(dst: &mut BytesMut, s: &str) {
    put_bin(dst, s.as_bytes());
}

/// Writes binary data whose length was checked by [`bin_len`].
pub(super) fn put_bin(dst: &mut BytesMut, b: &[u8]) {
    dst.put_u16(b.len() as u16);
    dst.put_slice(b);
}
