//! The client state without I/O: packets out, acknowledgements in.

use bytes::Bytes;
use tokio::sync::oneshot;

use super::*;
use crate::protocol::decode_packet;

fn outbound(qos: QoS) -> Outbound {
    Outbound {
        topic: TopicName::new("t").expect("topic"),
        payload: Bytes::from_static(b"x"),
        qos,
        retain: false,
        properties: Properties::default(),
    }
}

/// Everything encoded so far, decoded.
fn written(r: &mut Requests) -> Vec<Packet> {
    let mut out = Vec::new();
    for _ in 0..100 {
        match decode_packet(&mut r.out, Some(ProtocolVersion::V5), usize::MAX) {
            Ok(Some(p)) => out.push(p),
            _ => return out,
        }
    }
    out
}

fn publish(r: &mut Requests, qos: QoS) -> oneshot::Receiver<Result<(), Refused>> {
    let (reply, answer) = oneshot::channel();
    let publish = outbound(qos);
    assert!(r.handle(Command::Publish { publish, reply }).is_none());
    answer
}

fn id(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero")
}

#[test]
fn publishes_beyond_the_receive_maximum_wait_for_an_acknowledgement() {
    let mut r = Requests::new();
    r.set_limits(Some(2), None);
    let mut first = publish(&mut r, QoS::AtLeastOnce);
    let _second = publish(&mut r, QoS::ExactlyOnce);
    let mut third = publish(&mut r, QoS::AtLeastOnce);
    let ids: Vec<_> = written(&mut r)
        .into_iter()
        .map(|p| match p {
            Packet::Publish(p) => p.packet_id(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, vec![Some(id(1)), Some(id(2))], "the third is held");
    r.on_ack(Packet::PubAck(PubResponse::new(id(1))));
    assert_eq!(first.try_recv().expect("answered"), Ok(()));
    assert!(matches!(&written(&mut r)[..], [Packet::Publish(p)] if p.packet_id() == Some(id(3))));
    assert!(third.try_recv().is_err(), "not acknowledged yet");
    let mut refusal = PubResponse::new(id(3));
    refusal.reason = ReasonCode::QUOTA_EXCEEDED;
    r.on_ack(Packet::PubAck(refusal));
    let refused = third.try_recv().expect("answered");
    assert_eq!(
        refused.expect_err("refused").reason,
        ReasonCode::QUOTA_EXCEEDED
    );
    // QoS 2: PUBREC is answered with PUBREL; only PUBCOMP ends the flow.
    r.on_ack(Packet::PubRec(PubResponse::new(id(2))));
    assert_eq!(
        written(&mut r),
        vec![Packet::PubRel(PubResponse::new(id(2)))]
    );
    r.fail_all(&refused_why());
    assert!(r.pending.is_empty() && r.held.is_empty());
}

fn refused_why() -> Refused {
    refused(ReasonCode::SESSION_TAKEN_OVER, "test")
}

#[test]
fn a_qos2_message_taken_is_delivered_once_and_released_with_pubcomp() {
    let mut r = Requests::new();
    let incoming = |n| Publish {
        dup: false,
        flow: Flow::ExactlyOnce(id(n)),
        retain: false,
        topic: TopicName::new("t").expect("topic"),
        properties: Properties::default(),
        payload: Bytes::new(),
    };
    let delivery = r.on_publish(incoming(7)).expect("delivered");
    let ack = delivery.ack.expect("owes PUBREC");
    assert!(written(&mut r).is_empty(), "nothing until it is taken");
    r.handle(Command::Ack(ack));
    assert_eq!(
        written(&mut r),
        vec![Packet::PubRec(PubResponse::new(id(7)))]
    );
    assert!(
        r.on_publish(incoming(7)).is_none(),
        "sent again: not delivered twice"
    );
    assert_eq!(
        written(&mut r),
        vec![Packet::PubRec(PubResponse::new(id(7)))]
    );
    r.on_ack(Packet::PubRel(PubResponse::new(id(7))));
    assert_eq!(
        written(&mut r),
        vec![Packet::PubComp(PubResponse::new(id(7)))]
    );
    assert!(
        r.on_publish(incoming(7)).is_some(),
        "a new message under a free id"
    );
}
