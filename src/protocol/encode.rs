use super::*;
use bytes::BytesMut;
pub fn encode_packet(
    _p: &Packet,
    _v: ProtocolVersion,
    _d: &mut BytesMut,
) -> Result<(), EncodeError> {
    todo!()
}
pub fn encoded_len(_p: &Packet, _v: ProtocolVersion) -> usize {
    todo!()
}
