use super::*;
use bytes::BytesMut;
pub fn decode_packet(
    _src: &mut BytesMut,
    _v: Option<ProtocolVersion>,
    _m: usize,
) -> Result<Option<Packet>, DecodeError> {
    todo!()
}
